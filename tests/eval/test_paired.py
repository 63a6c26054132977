"""eval/paired.py: the paired student/teacher comparison behind the self-learning switch."""

import math

import pytest

from eval.paired import STUDENT, TEACHER, UNDECIDED, compare_paired, difference_interval, mcnemar_p, min_problems


@pytest.mark.parametrize(("confidence", "needed"), [(0.95, 5), (0.99, 7), (0.9, 4), (0.5, 2)])
def test_min_problems_is_the_smallest_split_a_perfect_student_can_win(confidence, needed):
    assert min_problems(confidence) == needed
    assert 0.5 ** needed < 1 - confidence <= 0.5 ** (needed - 1)


def test_mcnemar_p_is_the_exact_one_sided_binomial_tail():
    # 8 student-only and 2 teacher-only: P(X >= 8), X ~ Binomial(10, 1/2) = (45 + 10 + 1) / 1024
    assert mcnemar_p(8, 2) == pytest.approx(56 / 1024)
    assert mcnemar_p(5, 0) == pytest.approx(1 / 32)
    assert mcnemar_p(0, 0) == 1.0
    assert mcnemar_p(0, 3) == 1.0
    with pytest.raises(ValueError, match="discordant counts"):
        mcnemar_p(-1, 2)


def test_a_student_better_at_the_confidence_takes_over():
    student = [True] * 9 + [False]
    teacher = [False] * 6 + [True] * 3 + [False]
    result = compare_paired(student, teacher)
    assert (result.student_only, result.teacher_only) == (6, 0)
    assert result.decision == STUDENT and result.p_value == pytest.approx(1 / 64)
    assert result.difference == pytest.approx(0.6)
    assert 0 < result.ci_low <= 0.6 <= result.ci_high <= 1
    assert "better at 95%" in result.reason and "McNemar p=0.0156" in result.reason


def test_more_passes_that_are_noise_keep_the_teacher():
    # 8 to 2 discordant looks like a clear win as a raw count; p = 0.055 is not below 0.05
    student = [True] * 8 + [False] * 2 + [True] * 10
    teacher = [False] * 8 + [True] * 2 + [True] * 10
    result = compare_paired(student, teacher)
    assert result.student_passes == 18 and result.teacher_passes == 12
    assert result.decision == TEACHER and "not better" in result.reason
    assert compare_paired(student, teacher, confidence=0.9).decision == STUDENT


def test_a_split_too_small_is_undecided_even_when_the_student_wins_everything():
    result = compare_paired([True] * 4, [False] * 4)
    assert result.decision == UNDECIDED and result.p_value == pytest.approx(1 / 16)
    assert "needs at least 5" in result.reason
    empty = compare_paired([], [])
    assert empty.decision == UNDECIDED and math.isnan(empty.difference)


def test_a_worse_student_and_an_equal_one_keep_the_teacher():
    assert compare_paired([False] * 6, [True] * 6).decision == TEACHER
    tie = compare_paired([True, False] * 5, [True, False] * 5)
    assert tie.decision == TEACHER and (tie.ci_low, tie.ci_high) == (0.0, 0.0)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="differ in length"):
        compare_paired([True], [True, False])
    with pytest.raises(ValueError, match="confidence"):
        compare_paired([True], [True], confidence=1.0)


def test_the_bootstrap_interval_is_seeded_and_keeps_the_pairing():
    student = [True, True, False, True, False, True, True, False]
    teacher = [False, True, False, False, True, True, False, False]
    first = difference_interval(student, teacher, 0.95, seed=3)
    assert first == difference_interval(student, teacher, 0.95, seed=3)
    assert first[0] <= sum(student) / 8 - sum(teacher) / 8 <= first[1]
