"""Two models on the same problems: is the first (the student) better than the second (the teacher)?

    comparison = compare_paired([True, False, True, ...], [True, False, False, ...], confidence=0.95)
    comparison.decision    # "student" | "teacher" | "undecided"
    comparison.reason      # one sentence with the figures

Pass counts alone on a few dozen problems are noise. The problems both models pass or both fail say nothing about
which is better; only the discordant ones do: `student_only` (b) and `teacher_only` (c). McNemar's exact test asks
how likely b or more student-only wins are among b + c discordant problems if neither model were better (a fair coin,
scipy's binomial test, one-sided). The student takes over only when b > c and that probability is below
1 - confidence. The paired difference of pass rates, (b - c) / n, gets a percentile bootstrap interval that resamples
problems (scipy's `bootstrap`), so it keeps the pairing.

A split can be too small to decide anything: with n problems the smallest possible p-value is 0.5 ** n (the student
wins every one), so below `min_problems(confidence)` problems the answer is "undecided" and the teacher stays.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

STUDENT, TEACHER, UNDECIDED = "student", "teacher", "undecided"


@dataclass(frozen=True)
class PairedComparison:
    problems: int
    student_passes: int
    teacher_passes: int
    student_only: int  # b: discordant problems the student passes and the teacher fails
    teacher_only: int  # c
    difference: float  # (b - c) / n: student pass rate minus teacher pass rate
    ci_low: float
    ci_high: float
    p_value: float  # one-sided exact McNemar: P(X >= b), X ~ Binomial(b + c, 1/2); 1.0 without discordant problems
    confidence: float
    decision: str  # student | teacher | undecided
    reason: str

    def as_dict(self) -> dict:
        return asdict(self)


def min_problems(confidence: float) -> int:
    """The fewest problems on which a student winning all of them is better at `confidence` (5 at 0.95)."""
    _check_confidence(confidence)
    return math.floor(math.log(1 - confidence) / math.log(0.5)) + 1


def mcnemar_p(student_only: int, teacher_only: int) -> float:
    """One-sided exact McNemar p-value that the student is better, from the discordant counts."""
    from scipy.stats import binomtest

    if student_only < 0 or teacher_only < 0:
        raise ValueError(f"discordant counts must be >= 0, got {student_only} and {teacher_only}")
    discordant = student_only + teacher_only
    return 1.0 if discordant == 0 else float(binomtest(student_only, discordant, 0.5, alternative="greater").pvalue)


def difference_interval(student: list[bool], teacher: list[bool], confidence: float,
                        seed: int = 0, resamples: int = 2000) -> tuple[float, float]:
    """A percentile bootstrap interval of the paired pass-rate difference, resampling problems."""
    import numpy as np
    from scipy.stats import bootstrap

    diffs = np.array([int(s) - int(t) for s, t in zip(student, teacher)], dtype=float)
    if len(diffs) == 0:
        return math.nan, math.nan
    if np.all(diffs == diffs[0]):  # every resample has the same mean: the interval is that point
        return float(diffs[0]), float(diffs[0])
    result = bootstrap((diffs,), np.mean, confidence_level=confidence, n_resamples=resamples, method="percentile",
                       rng=np.random.default_rng(seed))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def compare_paired(student: list[bool], teacher: list[bool], confidence: float = 0.95,
                   seed: int = 0) -> PairedComparison:
    """Student versus teacher, problem by problem (the two lists in the same problem order)."""
    _check_confidence(confidence)
    if len(student) != len(teacher):
        raise ValueError(f"paired results differ in length: {len(student)} student vs {len(teacher)} teacher")
    n = len(student)
    b = sum(1 for s, t in zip(student, teacher) if s and not t)
    c = sum(1 for s, t in zip(student, teacher) if t and not s)
    p = mcnemar_p(b, c)
    low, high = difference_interval(student, teacher, confidence, seed)
    needed = min_problems(confidence)
    level = f"{confidence:.0%}"
    figures = f"student {sum(student)}/{n}, teacher {sum(teacher)}/{n}; discordant {b} student-only, {c} teacher-only"
    if n < needed:
        decision = UNDECIDED
        reason = (f"{n} held-out problems cannot decide at {level} (a student winning every one needs at least "
                  f"{needed}); the teacher stays")
    elif b > c and p < 1 - confidence:
        decision = STUDENT
        reason = f"the student is better at {level}: {figures}, McNemar p={p:.3g}"
    else:
        decision = TEACHER
        reason = f"the student is not better at {level}: {figures}, McNemar p={p:.3g}"
    return PairedComparison(n, sum(student), sum(teacher), b, c, (b - c) / n if n else math.nan, low, high, p,
                            confidence, decision, reason)


def _check_confidence(confidence: float) -> None:
    if not 0.5 <= confidence < 1:
        raise ValueError(f"confidence must be in [0.5, 1), got {confidence}")
