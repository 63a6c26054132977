"""Teacher client throughput against a fixed-latency OpenAI-compatible server, as a ratio of the concurrency bound.

With latency L per request and C requests in flight, no client can do better than C / L requests per second; the
ratio measured / (C / L) is how much of that the client achieves (goal >= 0.9 at C = 32). The same run also times
the openai package's async client called directly with a plain semaphore, as a baseline for our overhead (cache
look-ups and writes, retries bookkeeping).

    python benchmarks/teacher_throughput.py [--latency 1.0] [--rounds 10] [--concurrency 8 32 64]

Each run sends rounds x concurrency requests. The openai package spends a few ms of CPU per request (request
transformation, response models), so at very short latencies one process saturates a core before the bound.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import openai  # noqa: E402

from resources.llm import ChatRequest, TeacherClient  # noqa: E402
from resources.llm_cache import LLMCache  # noqa: E402

STUB = Path(__file__).resolve().parent.parent / "tests" / "openai_stub_server.py"


def batch(n: int, tag: str) -> list[ChatRequest]:
    return [ChatRequest(f"{tag}{i}", [{"role": "user", "content": f"{tag} prompt {i}"}], max_tokens=16)
            for i in range(n)]


async def plain_openai(base_url: str, reqs: list[ChatRequest], concurrency: int) -> None:
    gate = asyncio.Semaphore(concurrency)
    api = openai.AsyncOpenAI(base_url=base_url, api_key="x", max_retries=0)

    async def one(r: ChatRequest) -> None:
        async with gate:
            await api.chat.completions.create(model="stub", messages=r.messages, **r.params())

    await asyncio.gather(*(one(r) for r in reqs))
    await api.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency", type=float, default=1.0, help="seconds per request (LLM calls take seconds)")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8, 32, 64])
    args = parser.parse_args()
    print(f"# fixed latency {args.latency * 1000:.0f} ms, {args.rounds} x concurrency requests per run")
    print(f"{'client':<26}{'concurrency':>12}{'req/s':>9}{'bound':>9}{'ratio':>8}")
    # The server runs in its own process so that its threads do not compete with the client for one GIL.
    server = subprocess.Popen([sys.executable, str(STUB), "--port", "0", "--latency", str(args.latency)],
                              stdout=subprocess.PIPE, text=True)
    base_url = server.stdout.readline().strip()
    try:
        met = run_all(args, base_url)
    finally:
        server.kill()
        server.wait()
    print("goal (>= 0.9 of the bound at 32 concurrent):", "met" if met else "NOT met")
    return 0


def run_all(args: argparse.Namespace, base_url: str) -> bool:
    met = True
    with tempfile.TemporaryDirectory() as tmp:
        for c in args.concurrency:
            n = args.rounds * c
            bound = c / args.latency
            start = time.perf_counter()
            asyncio.run(plain_openai(base_url, batch(n, f"plain{c}-"), c))
            plain = n / (time.perf_counter() - start)
            client = TeacherClient(base_url, "stub", concurrency=c, cache=LLMCache(Path(tmp) / f"{c}.sqlite"))
            start = time.perf_counter()
            client.complete_batch(batch(n, f"ours{c}-"))
            ours = n / (time.perf_counter() - start)
            print(f"{'openai + semaphore':<26}{c:>12}{plain:>9.1f}{bound:>9.1f}{plain / bound:>8.2f}")
            print(f"{'TeacherClient (cached)':<26}{c:>12}{ours:>9.1f}{bound:>9.1f}{ours / bound:>8.2f}")
            if c == 32:
                met = ours / bound >= 0.9
    return met


if __name__ == "__main__":
    sys.exit(main())
