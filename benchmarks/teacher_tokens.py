"""Tokens per second of the bundled offline teacher on this machine.

For each model: start the llama.cpp server through LocalTeacherServer (start-up time printed), one warm-up request,
then a few coding prompts, greedy, non-streaming. Printed per model:
  - end to end: completion_tokens / wall time of the request (what a client sees: prompt processing included);
  - decode and prompt processing: llama.cpp's own timings for each request ("eval time" and "prompt eval time"
    lines the server writes to its log), when the log has them.

    python benchmarks/teacher_tokens.py [--models qwen2.5-coder-1.5b smollm2-135m] [--max-tokens 128] [--n-threads 0]
"""

from __future__ import annotations

import argparse
import inspect
import re
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import openai  # noqa: E402

from resources.local_llm import LocalTeacherServer, usable_cpus  # noqa: E402

# One long prompt (an OSS-Instruct style seed: real stdlib source) so prompt processing is measured on ~hundreds of
# tokens, and short ones for decode.
_SEED = inspect.getsource(textwrap.TextWrapper._wrap_chunks)
PROMPTS = [
    "Write a Python function `merge_intervals(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]` that "
    "merges overlapping intervals. Reply with one ```python block.",
    "Write a Python class `LRUCache` with `get(key)` and `put(key, value)` methods and a fixed capacity. Reply with "
    "one ```python block.",
    "Here is a function from Python's standard library:\n\n```python\n" + _SEED + "```\n\nWrite a new, self-contained "
    "programming problem inspired by it, then a solution in one ```python block.",
]

# llama.cpp's per-request timing lines, e.g.
#   llama_perf_context_print: prompt eval time =  1234.56 ms /   345 tokens (  3.58 ms per token,   279.45 tokens per second)
#   llama_perf_context_print:        eval time =  5678.90 ms /   127 runs   ( 44.71 ms per token,    22.36 tokens per second)
_TIMING = re.compile(r"(prompt eval|\beval) time =\s*([\d.]+) ms /\s*(\d+) (?:tokens|runs)")


def llama_timings(log_text: str) -> dict[str, tuple[float, int]]:
    """{'prompt eval': (ms, tokens), 'eval': (ms, tokens)} from the last timing block in `log_text`."""
    found = {}
    for kind, ms, count in _TIMING.findall(log_text):
        found[kind.strip()] = (float(ms), int(count))
    return found


def bench_model(model: str, max_tokens: int, n_threads: int, n_ctx: int) -> dict:
    with tempfile.TemporaryDirectory() as logs:
        started = time.perf_counter()
        with LocalTeacherServer(model, n_ctx=n_ctx, n_threads=n_threads, log_dir=Path(logs)) as server:
            startup_s = time.perf_counter() - started
            client = openai.OpenAI(base_url=server.base_url, api_key="local", timeout=600, max_retries=0)

            def ask(prompt: str, tokens: int):
                offset = server.log_path.stat().st_size
                t0 = time.perf_counter()
                reply = client.chat.completions.create(model=server.model, temperature=0, max_tokens=tokens,
                                                       messages=[{"role": "user", "content": prompt}])
                wall = time.perf_counter() - t0
                time.sleep(0.2)  # let the server flush its timing lines
                with server.log_path.open("rb") as handle:
                    handle.seek(offset)
                    timings = llama_timings(handle.read().decode(errors="replace"))
                return reply, wall, timings

            ask("Say hi.", 4)  # warm-up: first-request allocations, page cache
            rows = []
            for prompt in PROMPTS:
                reply, wall, timings = ask(prompt, max_tokens)
                rows.append({"prompt_tokens": reply.usage.prompt_tokens,
                             "completion_tokens": reply.usage.completion_tokens, "wall_s": wall, **timings})
    return {"model": model, "startup_s": startup_s, "rows": rows}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["qwen2.5-coder-1.5b", "smollm2-135m"])
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--n-threads", type=int, default=0, help="0: every usable core")
    parser.add_argument("--n-ctx", type=int, default=4096)
    args = parser.parse_args()
    print(f"teacher tokens/s: {usable_cpus()} usable cores, n_threads={args.n_threads or usable_cpus()}, "
          f"greedy, max_tokens={args.max_tokens}, {len(PROMPTS)} prompts after one warm-up")
    for model in args.models:
        result = bench_model(model, args.max_tokens, args.n_threads, args.n_ctx)
        print(f"\n{model}: server start-up {result['startup_s']:.1f} s (model assembly check + load)")
        print(f"  {'prompt tok':>10} {'reply tok':>9} {'wall s':>7} {'end-to-end tok/s':>16} "
              f"{'decode tok/s':>12} {'prompt eval tok/s':>17}")
        end_to_end, decode, prefill = [], [], []
        for row in result["rows"]:
            e2e = row["completion_tokens"] / row["wall_s"]
            end_to_end.append(e2e)
            dec = pp = float("nan")
            if "eval" in row and row["eval"][0] > 0:
                dec = row["eval"][1] / (row["eval"][0] / 1000)
                decode.append(dec)
            if "prompt eval" in row and row["prompt eval"][0] > 0:
                # llama-cpp-python reuses the cached prefix of the previous prompt: count only what was evaluated.
                pp = row["prompt eval"][1] / (row["prompt eval"][0] / 1000)
                prefill.append((pp, row["prompt eval"][1]))
            pe = f"{pp:.1f} ({row['prompt eval'][1]} tok)" if "prompt eval" in row else "n/a"
            print(f"  {row['prompt_tokens']:>10} {row['completion_tokens']:>9} {row['wall_s']:>7.2f} {e2e:>16.1f} "
                  f"{dec:>12.1f} {pe:>17}")
        line = f"  median: end-to-end {statistics.median(end_to_end):.1f} tok/s"
        if decode:
            line += f", decode {statistics.median(decode):.1f} tok/s"
        if prefill:
            longest = max(prefill, key=lambda p: p[1])
            line += f", prompt eval {longest[0]:.0f} tok/s (longest prompt, {longest[1]} tokens evaluated)"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
