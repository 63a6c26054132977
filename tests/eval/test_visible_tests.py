"""eval/visible_tests.py + eval/docstring_examples.py: what a model may see, checked against the canonical solutions
in the sandbox, and kept apart from the hidden tests."""

import pytest

from eval.benchmarks import load_benchmarks
from eval.docstring_examples import examples
from eval.scoring import SandboxRunner
from eval.visible_tests import (
    MBPP_INTRO,
    VisibleTests,
    canonical_checked,
    hidden_only_asserts,
    visible_prompt,
    visible_tests,
)

ITEMS = load_benchmarks()
BY_ID = {it.task_id: it for it in ITEMS}


@pytest.fixture(scope="module")
def checked(bwrap_pool2):
    return canonical_checked(ITEMS, SandboxRunner(bwrap_pool2, use_cache=False).run_checked)


@pytest.mark.parametrize("docstring, expected", [
    (">>> add(1, 2)\n3\n>>> add(0, 0)\n0", [("add(1, 2)", "3"), ("add(0, 0)", "0")]),
    (">>> add([])\n\n>>> add([1]) == 1", [("add([])", "None"), ("add([1]) == 1", None)]),  # HumanEval/12, /116
    ("add(1, 2) ➞ 3\nadd(2, 2) => true", [("add(1, 2)", "3"), ("add(2, 2)", "True")]),  # /76 writes true
    ("* add([5]) => [5]\nfor add(7) == 34", [("add([5])", "[5]"), ("add(7)", "34")]),  # /88, /150
    ("add(15)   # returns \"db1111db\"", [("add(15)", "'db1111db'")]),  # /79: a comment, normalised away
    ('add("5 apples", 19) ->19 - 5 = 14', [("add('5 apples', 19)", "14")]),  # /67: the end of a worked sum
    ("For lst = [1,2,3] the output should be 6", [("add(lst=[1, 2, 3])", "6")]),  # /133
    ("Input: [4,2,3]\nOutput: [2, 1]", [("add([4, 2, 3])", "[2, 1]")]),  # /68
    ("Adds two numbers; no examples.", []),
])
def test_examples_from_docstrings(docstring, expected):
    assert examples(docstring, "add") == expected


def test_mbpp_shows_only_its_first_test():
    item = BY_ID["Mbpp/11"]
    tests = visible_tests(item)
    assert [c.label for c in tests.checks] == ['assert remove_Occ("hello","l") == "heo"']
    prompt = visible_prompt(item)
    assert prompt == f"{item.description}\n{MBPP_INTRO}\n\nassert remove_Occ(\"hello\",\"l\") == \"heo\""
    assert hidden_only_asserts(item) == ['assert remove_Occ("abcda","a") == "bcd"',
                                         'assert remove_Occ("PHP","P") == "H"']


def test_hidden_asserts_never_appear_in_any_visible_prompt_or_test():
    for item in ITEMS:
        shown = visible_prompt(item) + "\n" + visible_tests(item).text()
        leaked = [a for a in hidden_only_asserts(item) if a in shown]
        assert not leaked, item.task_id


def test_canonical_solutions_pass_every_kept_example(checked, bwrap_pool2):
    he = [it for it in ITEMS if it.benchmark == "humaneval"]
    mbpp = [it for it in ITEMS if it.benchmark == "mbpp"]
    assert sum(bool(checked[it.task_id].checks) for it in he) >= 145  # 147 measured; the rest give no examples
    assert all(len(checked[it.task_id].checks) == 1 for it in mbpp)
    # Examples that contradict the canonical solution are dropped, not shown.
    assert "median([-10, 4, 6, 1000, 10, 20])" in checked["HumanEval/47"].dropped[0].call
    assert checked["HumanEval/47"].checks and len(checked["HumanEval/80"].checks) == 0
    rows = [(it.task_id, it.solution, checked[it.task_id].script()) for it in ITEMS if checked[it.task_id].checks]
    failed = [v.id for v in SandboxRunner(bwrap_pool2, use_cache=False).run_checked(rows) if not v.passed]
    assert failed == []


def test_a_wrong_answer_fails_its_examples_and_is_told_what_it_returned(checked, bwrap_pool2):
    item = BY_ID["HumanEval/0"]
    tests: VisibleTests = checked[item.task_id]
    wrong = "def has_close_elements(numbers, threshold):\n    return False\n"
    crash = "def has_close_elements(numbers, threshold):\n    return numbers[99]\n"
    verdicts = SandboxRunner(bwrap_pool2, use_cache=False).run_checked([("wrong", wrong, tests.script()),
                                                       ("crash", crash, tests.script())])
    assert [v.status for v in verdicts] == ["failed", "failed"]
    assert "1 of 2 example tests failed" in verdicts[0].stderr
    assert "assert has_close_elements([1.0, 2.8, 3.0, 4.0, 5.0, 2.0], 0.3) == True  # got False" in verdicts[0].stderr
    assert "# raised IndexError: list index out of range" in verdicts[1].stderr
