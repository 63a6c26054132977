"""Tokens per second of the bundled offline teacher on this machine.

For each model: start the llama.cpp server through LocalTeacherServer (start-up time printed), one warm-up request,
then a few coding prompts, greedy, streamed (so the first token's arrival can be timed). Per request:
  - end to end: reply tokens / wall time of the request (what a client sees, prompt processing included);
  - decode: reply tokens after the first / time from the first to the last token (client side), and llama.cpp's
    own "eval time" line from the server log;
  - prompt processing: prompt tokens evaluated / time to the first token (llama-cpp-python reuses the prefix the
    previous prompt shares with this one, e.g. the chat template's system header; the log says how many tokens it
    actually evaluated, and that is the count used).
Token counts come from the server log ("N runs", "N tokens", "remaining N prompt tokens to eval"), not from
counting stream chunks.

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

from resources.llm_server import LocalTeacherServer, usable_cpus  # noqa: E402

# Two short prompts (decode dominates) and one OSS-Instruct style prompt carrying real stdlib source (~500 tokens,
# so prompt processing is measured on a realistic length).
PROMPTS = [
    "Write a Python function `merge_intervals(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]` that "
    "merges overlapping intervals. Reply with one ```python block.",
    "Write a Python class `LRUCache` with `get(key)` and `put(key, value)` methods and a fixed capacity. Reply with "
    "one ```python block.",
    "Here is a function from Python's standard library:\n\n```python\n"
    + inspect.getsource(textwrap.TextWrapper._wrap_chunks)
    + "```\n\nWrite a new, self-contained programming problem inspired by it, then a solution in one ```python block.",
]

_EVAL = re.compile(r"^\S*\s+eval time =\s*([\d.]+) ms /\s*(\d+) runs", re.MULTILINE)
_PROMPT = re.compile(r"prompt eval time =\s*[\d.]+ ms /\s*(\d+) tokens")
_PREFIX_HIT = re.compile(r"(\d+) prefix-match hit, remaining (\d+) prompt tokens to eval")


def server_counts(log_text: str) -> dict:
    """Token counts and llama.cpp's decode time for the one request whose log lines are `log_text`."""
    counts = {}
    if m := _EVAL.search(log_text):
        counts["eval_ms"], counts["reply_tokens"] = float(m.group(1)), int(m.group(2))
    if m := _PROMPT.search(log_text):  # llama.cpp counts the tokens it evaluated
        counts["prompt_tokens"] = counts["evaluated_prompt_tokens"] = int(m.group(1))
    if m := _PREFIX_HIT.search(log_text):
        counts["prompt_tokens"] = int(m.group(1)) + int(m.group(2))
        counts["evaluated_prompt_tokens"] = int(m.group(2))
    return counts


def timed_request(client: openai.OpenAI, server: LocalTeacherServer, prompt: str, max_tokens: int) -> dict:
    offset = server.log_path.stat().st_size
    start = time.perf_counter()
    first = last = None
    stream = client.chat.completions.create(model=server.model, temperature=0, max_tokens=max_tokens, stream=True,
                                            messages=[{"role": "user", "content": prompt}])
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            last = time.perf_counter()
            first = first or last
    end = time.perf_counter()
    time.sleep(0.3)  # the server prints its timing lines after the last chunk
    with server.log_path.open("rb") as handle:
        handle.seek(offset)
        counts = server_counts(handle.read().decode(errors="replace"))
    return {"wall_s": end - start, "ttft_s": (first or end) - start, "decode_s": (last or end) - (first or end),
            **counts}


def bench_model(model: str, max_tokens: int, n_threads: int, n_ctx: int) -> dict:
    with tempfile.TemporaryDirectory() as logs:
        started = time.perf_counter()
        with LocalTeacherServer(model, n_ctx=n_ctx, n_threads=n_threads, log_dir=Path(logs)) as server:
            startup_s = time.perf_counter() - started
            client = openai.OpenAI(base_url=server.base_url, api_key="local", timeout=600, max_retries=0)
            timed_request(client, server, "Say hi.", 4)  # warm-up
            rows = [timed_request(client, server, prompt, max_tokens) for prompt in PROMPTS]
    return {"model": model, "startup_s": startup_s, "rows": rows}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["qwen2.5-coder-1.5b", "smollm2-135m"])
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--n-threads", type=int, default=0, help="0: every usable core")
    parser.add_argument("--n-ctx", type=int, default=4096)
    args = parser.parse_args()
    print(f"teacher tokens/s: {usable_cpus()} usable cores, n_threads={args.n_threads or usable_cpus()}, greedy, "
          f"max_tokens={args.max_tokens}, {len(PROMPTS)} prompts after one warm-up, streamed")
    for model in args.models:
        result = bench_model(model, args.max_tokens, args.n_threads, args.n_ctx)
        print(f"\n{model}: server start-up {result['startup_s']:.1f} s (cached model check + load)")
        print(f"  {'prompt tok':>10} {'evaluated':>9} {'reply tok':>9} {'wall s':>7} {'end-to-end':>10} "
              f"{'decode':>7} {'llama.cpp decode':>16} {'prompt eval':>11}   (rates in tok/s)")
        summary: dict[str, list[float]] = {"end-to-end": [], "decode": [], "llama.cpp decode": [], "prompt eval": []}
        for row in result["rows"]:
            reply = row.get("reply_tokens", 0)
            rates = {
                "end-to-end": reply / row["wall_s"],
                "decode": (reply - 1) / row["decode_s"] if row["decode_s"] > 0 and reply > 1 else float("nan"),
                "llama.cpp decode": reply / (row["eval_ms"] / 1000) if row.get("eval_ms") else float("nan"),
                "prompt eval": (row["evaluated_prompt_tokens"] / row["ttft_s"]
                                if row.get("evaluated_prompt_tokens") else float("nan")),
            }
            for key, value in rates.items():
                if value == value:  # not NaN
                    summary[key].append(value)
            print(f"  {row.get('prompt_tokens', 0):>10} {row.get('evaluated_prompt_tokens') or 0:>9} {reply:>9} "
                  f"{row['wall_s']:>7.2f} {rates['end-to-end']:>10.1f} {rates['decode']:>7.1f} "
                  f"{rates['llama.cpp decode']:>16.1f} {rates['prompt eval']:>11.1f}")
        medians = ", ".join(f"{k} {statistics.median(v):.1f}" for k, v in summary.items() if v and k != "prompt eval")
        longest = max(result["rows"], key=lambda r: r.get("evaluated_prompt_tokens") or 0)
        pp = (f"; prompt eval {longest['evaluated_prompt_tokens'] / longest['ttft_s']:.1f} tok/s on the longest prompt "
              f"({longest['evaluated_prompt_tokens']} tokens)" if longest.get("evaluated_prompt_tokens") else "")
        print(f"  median tok/s: {medians}{pp}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
