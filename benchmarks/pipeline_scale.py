"""The whole pipeline at scale with an instant teacher: N seeds of the stdlib source through generation
(`crucible generate`: seeds -> problems -> verified dialogues) and curation (dedup -> decontamination), as a user
runs it, with the teacher's cost taken out (benchmarks/stub_teacher.py answers at once).

    python benchmarks/pipeline_scale.py [--seeds 1000 3000 10000] [--home-root /tmp/scale] [--mode function]
        [--checkout DIR] [--tree DIR]

`--checkout DIR` runs the `cli.py` of another checkout of Crucible (a git worktree of an earlier commit) with this
venv: the baseline of a before/after comparison, measured with the same stub teacher in the same session.

First a 5-seed warm-up run builds the embeddings of the benchmark items (a one-time cost of a home, the same for
every N); each N then runs in a fresh home that holds only that embedding cache. For each N: wall time, seeds/s in
all and per stage (from the Dagster instance's step timings), each stage's milliseconds per seed (flat as N grows,
if the stage scales linearly), and the peak resident memory of the `crucible` process. The stdlib source has a
limited number of documented functions; `--mode both` adds windows for the larger N, and the table says how many
seeds each run really had.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.stub_teacher import StubTeacher  # noqa: E402
from tests.openai_stub_server import StubServer, StubState  # noqa: E402

EMBEDDING_CACHE = "embeddings.sqlite"  # resources/embedder.py's cache file under $CRUCIBLE_HOME/cache
# Dagster step keys -> the stage they belong to (the graph's asset names)
STAGES = {"seed_snippets": "seeds", "oss_instruct_problems": "problems", "verified_dialogues": "dialogues",
          "deduplicated_dialogues": "dedup", "decontaminated_dialogues": "decontam"}
OTHER = "checks"  # every other step: the asset checks that run after each stage


def step_seconds(home: Path) -> dict[str, float]:
    """Seconds per stage over every run in the home's Dagster instance."""
    import dagster as dg

    totals: dict[str, float] = {}
    with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
        for run in instance.get_runs():
            for step in instance.get_run_step_stats(run.run_id):
                if step.start_time is None or step.end_time is None:
                    continue
                stage = STAGES.get(step.step_key, OTHER)
                totals[stage] = totals.get(stage, 0.0) + step.end_time - step.start_time
    return totals


TREE_SOURCE = "tree"  # the name --tree's source gets in each home's sources.yaml


def run_once(seeds: int, mode: str, home: Path, base_url: str, checkout: Path | None, tree: Path | None,
             tree_license: str = "") -> dict:
    env = {**os.environ, "CRUCIBLE_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    if tree is not None:
        (home / "sources.yaml").write_text(f"sources:\n  {TREE_SOURCE}: {{kind: local, path: {tree}, license: "
                                           f"{tree_license}}}\n")
    # cli.py run as a script puts its own checkout first on sys.path, ahead of this one's editable install
    program = [sys.executable, str(checkout / "cli.py")] if checkout else [str(Path(sys.executable).with_name(
        "crucible"))]
    command = [*program, "generate", "--source", TREE_SOURCE if tree else "stdlib", "--seeds", str(seeds), "--mode",
               mode, "--base-url", base_url, "--model", "stub", "-q"]
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=checkout)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"crucible generate --seeds {seeds} failed ({done.returncode}): {done.stderr[-2000:]}")
    return {"summary": json.loads(done.stdout), "wall_s": wall}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1000, 3000, 10000], help="values of N")
    parser.add_argument("--mode", default="function", choices=["function", "window", "both"],
                        help="seed kinds of the stdlib source (default: function)")
    parser.add_argument("--tree", type=Path, default=None,
                        help="draw the seeds from this Python source tree instead of the stdlib, which runs out of "
                             "seeds near N = 2,300 in mode both (e.g. a copy of a large package: the seed filter "
                             "drops paths under site-packages/ as vendored)")
    parser.add_argument("--tree-license", default="Apache-2.0",
                        help="the tree's licence, which the seed filter checks (default: Apache-2.0)")
    parser.add_argument("--home-root", type=Path, default=None, help="where the homes go (default: a temp dir)")
    parser.add_argument("--checkout", type=Path, default=None,
                        help="run another checkout's cli.py (default: this one's `crucible`)")
    args = parser.parse_args()
    root = args.home_root or Path(tempfile.mkdtemp(prefix="crucible-scale-"))
    teacher = StubTeacher()
    print(f"# homes under {root}; source {args.tree or 'stdlib'}; mode {args.mode}; crucible from "
          f"{args.checkout or ROOT}")
    header = f"{'N':>6} {'seeds':>6} {'rows':>6} {'wall s':>8} {'seeds/s':>8} {'peak MB':>8}  per stage: s (ms/seed)"
    print(header)
    with StubServer(StubState(responder=teacher)) as server:
        warm = root / "warm-up"
        warm.mkdir(parents=True, exist_ok=False)
        run_once(5, args.mode, warm, server.base_url, args.checkout, args.tree, args.tree_license)
        for n in args.seeds:
            home = root / f"n{n}"
            (home / "cache").mkdir(parents=True, exist_ok=False)
            shutil.copy(warm / "cache" / EMBEDDING_CACHE, home / "cache" / EMBEDDING_CACHE)
            before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            done = run_once(n, args.mode, home, server.base_url, args.checkout, args.tree, args.tree_license)
            after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            summary = done["summary"]
            seeds = summary.get("seeds", n)
            stages = step_seconds(home)
            # the largest child so far: a run that used less than an earlier one shows that bound
            peak = f"{after / 1024:>8.0f}" if after > before else f"{'<=' + str(round(before / 1024)):>8}"
            per_stage = "  ".join(f"{stage} {secs:.1f} ({1000 * secs / max(seeds, 1):.1f})"
                                  for stage, secs in stages.items())
            rows = summary.get("curation", {}).get("decontaminated_dialogues", "?")
            print(f"{n:>6} {seeds:>6} {rows:>6} {done['wall_s']:>8.1f} {seeds / done['wall_s']:>8.2f} {peak}  "
                  f"{per_stage}", flush=True)
    print(f"# teacher calls: {teacher.calls}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
