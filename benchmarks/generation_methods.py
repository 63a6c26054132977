"""Every generation method on a few seeds of one source with the bundled (or a configured) teacher: rows kept,
rejects by reason, mean turns, difficulty and wall time per method, one `crucible generate --method` run each.

    .venv/bin/python benchmarks/generation_methods.py --home /tmp/methods-home --seeds 10 [--output FILE.json]

Methods run in dependency order on the same home (the derived methods start from what function_instruct verified),
each as its own command, so each wall time includes starting the teacher. library_instruct runs on the built-in
`library:numpy` source. This is a yield measurement, not a speed benchmark: there is no baseline to compare with.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ORDER = ("function_instruct", "oss_instruct", "interaction_simulation", "evol_instruct", "similar_problem",
         "code_correction", "follow_up", "single_turn_packing", "library_instruct")
SEED_METHODS = ("function_instruct", "oss_instruct", "library_instruct")


def run(method: str, home: Path, source: str, seeds: int, extra: list[str]) -> dict:
    args = [sys.executable, "cli.py", "generate", "--method", method, "--source", source, *extra]
    if method in SEED_METHODS:
        args += ["--seeds", str(seeds)]
    started = time.monotonic()
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "CRUCIBLE_HOME": str(home)})
    wall = round(time.monotonic() - started, 1)
    if done.returncode != 0:
        return {"method": method, "error": done.stderr.strip().splitlines()[-1:] or ["?"], "wall_s": wall}
    return {**json.loads(done.stdout), "wall_s": wall}


def row_of(summary: dict) -> dict:
    method = summary["method"]
    if "error" in summary:
        return {"method": method, "error": summary["error"][0], "wall_s": summary["wall_s"]}
    if method == "function_instruct":
        rejects = {**summary.get("problem_rejects", {}), **summary.get("dialogue_rejects", {})}
        kept = summary.get("verified_dialogues")
    else:
        rejects, kept = summary.get("rejects", {}), summary.get("rows")
    return {"method": method, "kept": kept, "rejects": rejects, "mean_turns": summary.get("mean_turns"),
            "difficulty": summary.get("difficulty"), "wall_s": summary["wall_s"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True, help="CRUCIBLE_HOME for the runs (reused: cached)")
    parser.add_argument("--source", default="stdlib", help="seed source of every method but library_instruct")
    parser.add_argument("--seeds", type=int, default=10, help="seeds for the methods that start from seeds")
    parser.add_argument("--methods", nargs="*", default=list(ORDER), help="methods to run, in this order")
    parser.add_argument("--output", type=Path, default=None, help="also write the rows as JSON here")
    parser.add_argument("generate_args", nargs=argparse.REMAINDER,
                        help="after --: more `crucible generate` options (e.g. --base-url URL --model M)")
    args = parser.parse_args()
    extra = [a for a in args.generate_args if a != "--"]
    rows = []
    for method in args.methods:
        source = "library:numpy" if method == "library_instruct" else args.source
        row = row_of(run(method, args.home, source, args.seeds, extra))
        rows.append(row)
        print(json.dumps(row), flush=True)
        if args.output:
            args.output.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
