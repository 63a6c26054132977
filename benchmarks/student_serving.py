"""Serving a fine-tuned student as the next teacher: how long the checkpoint takes to become a served GGUF, and how
fast it decodes next to the bundled smollm2-135m served the same way in the same run.

    python benchmarks/student_serving.py [CHECKPOINT] [--rounds 3] [--max-tokens 128] [--n-threads 0]

CHECKPOINT defaults to the newest $CRUCIBLE_HOME/checkpoints/cpu-smollm2-* folder (the cpu-smollm2 recipe's student,
a SmolLM2-135M fine-tune, so the bundled model is its own base). Printed:
  - export: llama.cpp's converter to f16 and the quantization, for q8_0 and q4_k_m (finetune/gguf_export.py, into a
    fresh temporary folder, so nothing is cached);
  - per served model (student q8_0, student q4_k_m, bundled smollm2-135m Q4_1), all served by LocalTeacherServer:
    server start-up, then after one warm-up the 3 fixed prompts of benchmarks/teacher_tokens.py (two short, one of
    ~1,000 tokens), greedy, streamed, in rounds that send each prompt to every model in turn; decode tokens/s as
    llama.cpp's own "eval time" line reports it, and the median's ratio to the bundled model's.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import openai  # noqa: E402

from benchmarks.teacher_tokens import PROMPTS, timed_request  # noqa: E402
from finetune.gguf_export import export_gguf  # noqa: E402
from resources.home import Home  # noqa: E402
from resources.llm_server import LocalTeacherServer, usable_cpus  # noqa: E402

BASELINE = "smollm2-135m"
QUANTIZATIONS = ("q8_0", "q4_k_m")


def newest_student() -> Path:
    found = sorted(Home.from_env().checkpoints.glob("cpu-smollm2-*"), key=lambda p: p.stat().st_mtime)
    if not found:
        sys.exit(f"no cpu-smollm2-* checkpoint under {Home.from_env().checkpoints}: train one "
                 "(python -m finetune.train --recipe cpu-smollm2) or give a checkpoint folder")
    return found[-1]


def decode_rate(row: dict) -> float:
    """llama.cpp's own decode rate for one request (its "eval time" line), NaN when the log had none."""
    return row["reply_tokens"] / (row["eval_ms"] / 1000) if row.get("eval_ms") else float("nan")


def measure(models: dict[str, str | os.PathLike], rounds: int, max_tokens: int, n_threads: int, logs: Path) -> dict:
    """Start every model's server (timed), then `rounds` rounds of the prompts, each prompt sent to every model in
    turn, one request at a time: a load that drifts during the run (a shared machine) touches all models alike."""
    results = {}
    with contextlib.ExitStack() as stack:
        for label, model in models.items():
            started = time.perf_counter()
            server = stack.enter_context(LocalTeacherServer(model, n_ctx=4096, n_threads=n_threads, log_dir=logs))
            client = openai.OpenAI(base_url=server.base_url, api_key="local", timeout=600, max_retries=0)
            results[label] = {"server": server, "client": client, "startup_s": time.perf_counter() - started,
                              "rates": [[] for _ in PROMPTS], "tokens": [[] for _ in PROMPTS]}
            timed_request(client, server, "Say hi.", 4)  # warm-up
        for _ in range(rounds):
            for i, prompt in enumerate(PROMPTS):
                for result in results.values():
                    row = timed_request(result["client"], result["server"], prompt, max_tokens)
                    result["rates"][i].append(decode_rate(row))
                    result["tokens"][i].append(row.get("reply_tokens", 0))
    for result in results.values():
        result["median"] = statistics.median(r for rates in result["rates"] for r in rates)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", nargs="?", type=Path, help="default: the newest cpu-smollm2-* checkpoint")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3, help="times each prompt is sent to each model")
    parser.add_argument("--n-threads", type=int, default=0, help="0: every usable core")
    args = parser.parse_args()
    checkpoint = args.checkpoint or newest_student()
    print(f"student serving: {checkpoint}\n{usable_cpus()} usable cores, n_threads={args.n_threads or usable_cpus()}, "
          f"greedy, max_tokens={args.max_tokens}, {len(PROMPTS)} prompts x {args.rounds} rounds after one warm-up")
    with tempfile.TemporaryDirectory(prefix="student-serving-") as tmp:
        tmp = Path(tmp)
        print(f"\n{'export':<10}{'convert s':>10}{'quantize s':>11}{'size MB':>9}")
        exports = {}
        for quantization in QUANTIZATIONS:
            exported = export_gguf(checkpoint, tmp / "gguf", quantization)
            exports[quantization] = exported
            print(f"{quantization:<10}{exported.convert_s:>10.1f}{exported.quantize_s:>11.1f}"
                  f"{exported.path.stat().st_size / 1e6:>9.1f}")
        models = {f"student {q}": exports[q].path for q in QUANTIZATIONS} | {f"bundled {BASELINE}": BASELINE}
        results = measure(models, args.rounds, args.max_tokens, args.n_threads, tmp / "logs")
    baseline = results[f"bundled {BASELINE}"]["median"]
    print(f"\n{'served model':<24}{'start s':>8}{'reply tokens':>14}{'decode tok/s, median per prompt':>33}"
          f"{'median':>8}{'ratio':>7}")
    for label, result in results.items():
        tokens = "/".join(str(statistics.median(t)) for t in result["tokens"])
        rates = "/".join(f"{statistics.median(r):.0f}" for r in result["rates"])
        print(f"{label:<24}{result['startup_s']:>8.1f}{tokens:>14}{rates:>33}{result['median']:>8.1f}"
              f"{result['median'] / baseline:>7.2f}")
    print(f"(ratio: median decode tokens/s over all prompts and rounds, over the bundled {BASELINE}'s in this run)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
