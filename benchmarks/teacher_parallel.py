"""The offline teacher with parallel requests: aggregate generated tokens/s of a bundled model served by llama.cpp's
`llama-server` (parallel slots, continuous batching) and by llama-cpp-python's server (one request at a time), with
1, 2 and 4 requests in flight. The ratio column is against llama-cpp-python's server with one request in flight,
measured in the same run.

    python benchmarks/teacher_parallel.py [--model qwen2.5-coder-1.5b] [--concurrency 1 2 4] [--requests 8]
        [--max-tokens 160] [--engines python llama-server]

Each (engine, concurrency) cell starts a fresh server (llama-server with as many slots as requests in flight) and
sends the same `--requests` coding prompts, `concurrency` at a time, at temperature 0. Tokens/s counts completion
tokens over the wall time of the whole batch, prompt processing included, which is what a pipeline waiting on the
teacher sees.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import openai  # noqa: E402

from resources.bundled_models import DEFAULT_MODEL  # noqa: E402
from resources.llm_server import LocalTeacherServer  # noqa: E402

TASKS = ["reverse the words of a sentence", "count the vowels in a string", "merge two sorted lists",
         "return the n-th Fibonacci number", "check whether a string is a palindrome",
         "flatten a nested list of integers", "find the second largest number in a list",
         "convert a Roman numeral to an integer", "group words that are anagrams of each other",
         "compute the running median of a list"]


def prompts(n: int) -> list[str]:
    return [f"Write a Python function to {TASKS[i % len(TASKS)]}, with a docstring and three assert tests."
            for i in range(n)]


async def run_batch(server: LocalTeacherServer, texts: list[str], concurrency: int, max_tokens: int):
    client = openai.AsyncOpenAI(base_url=server.base_url, api_key="local", timeout=1800, max_retries=0)
    gate = asyncio.Semaphore(concurrency)

    async def one(text: str) -> int:
        async with gate:
            reply = await client.chat.completions.create(
                model=server.model, temperature=0, max_tokens=max_tokens,
                messages=[{"role": "user", "content": text}])
            return reply.usage.completion_tokens

    start = time.perf_counter()
    tokens = await asyncio.gather(*(one(t) for t in texts))
    seconds = time.perf_counter() - start
    await client.close()
    return sum(tokens), seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=DEFAULT_MODEL,
                        help=f"a bundled model or GGUF path (default {DEFAULT_MODEL})")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4], help="default 1 2 4")
    parser.add_argument("--requests", type=int, default=8, help="requests per cell (default 8)")
    parser.add_argument("--max-tokens", type=int, default=160, help="completion tokens per request (default 160)")
    parser.add_argument("--engines", nargs="+", default=["python", "llama-server"], help="default python llama-server")
    parser.add_argument("--n-ctx", type=int, default=2048, help="context per sequence (default 2048)")
    args = parser.parse_args()
    texts = prompts(args.requests)
    print(f"# {args.model}, {args.requests} requests of <= {args.max_tokens} tokens per cell, temperature 0")
    print(f"{'engine':<14}{'in flight':>10}{'tokens':>8}{'seconds':>9}{'tokens/s':>10}{'ratio':>8}")
    baseline = None
    logs = tempfile.mkdtemp(prefix="teacher-parallel-")
    for engine in args.engines:
        for concurrency in args.concurrency:
            with LocalTeacherServer(args.model, n_ctx=args.n_ctx, engine=engine, slots=concurrency,
                                    log_dir=Path(logs)) as server:
                tokens, seconds = asyncio.run(run_batch(server, texts, concurrency, args.max_tokens))
            rate = tokens / seconds
            if engine == "python" and concurrency == 1:
                baseline = rate
            ratio = f"{rate / baseline:.2f}x" if baseline else "-"
            print(f"{engine:<14}{concurrency:>10}{tokens:>8}{seconds:>9.1f}{rate:>10.2f}{ratio:>8}", flush=True)
    print(f"# server logs in {logs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
