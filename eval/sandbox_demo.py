"""The offline demo of what runs today: HumanEval's canonical solutions verified in the sandbox."""

from __future__ import annotations

import json
import time
from collections import Counter

from eval.humaneval import canonical_programs, return_none_programs
from resources.home import Home
from resources.sandbox import Limits, SandboxPool
from resources.verdict_cache import CachedRunner, VerdictCache


def run_sandbox_demo(home: Home, backend: str = "bwrap", workers: int = 2) -> dict:
    """Run the 164 canonical solutions and their `return None` variants through the cached runner (a rerun answers
    from the verdict cache: `executed` says how many really ran); write verdicts under `home`."""
    out_dir = home.demo
    out_dir.mkdir(parents=True, exist_ok=True)
    programs = canonical_programs()
    wrong = [{**p, "id": p["id"] + "#return-none"} for p in return_none_programs()]
    start = time.monotonic()
    with SandboxPool(backend, workers, Limits()) as pool:
        runner = CachedRunner(pool, VerdictCache(home=home))
        verdicts = runner.run(programs + wrong)
    seconds = time.monotonic() - start
    path = out_dir / "sandbox_verdicts.jsonl"
    with path.open("w") as handle:
        for v in verdicts:
            handle.write(json.dumps(v.as_dict()) + "\n")
    canonical = Counter(v.status for v in verdicts[: len(programs)])
    stubs = Counter(v.status for v in verdicts[len(programs):])
    return {"path": path, "seconds": seconds, "canonical": dict(canonical), "return_none": dict(stubs),
            "tasks_per_s": len(verdicts) / seconds, "executed": runner.executed, "cached": runner.cached}
