"""The mutants code_correction starts from: every kind applies where it should, the edit is spliced into the original
text, the order is fixed by (seed, key), and a solution with nothing to mutate gives none."""

from __future__ import annotations

import ast

import pytest

from assets.generate.methods.mutations import KINDS, candidates

CLAMP = '''def clamp(x, low, high):
    # keep x inside [low, high]
    if x < low:
        return low
    if x > high:
        return high
    return x
'''

# (kind, solution, a line that some mutant of that kind must contain, a line it must no longer contain)
CASES = [
    ("off_by_one", "def last(xs):\n    return xs[len(xs) - 1]\n", "return xs[len(xs) - 2]", "xs[len(xs) - 1]"),
    ("off_by_one", "def total(n):\n    return sum(range(n))\n", "return sum(range(n + 1))", "range(n))"),
    ("off_by_one", "def head(xs, k):\n    return xs[:k]\n", "return xs[:k - 1]", "xs[:k]"),
    ("swapped_operands", "def gap(a, b):\n    return a - b\n", "return b - a", "a - b"),
    ("swapped_operands", "def share(a, b):\n    return a // b\n", "return b // a", "a // b"),
    ("swapped_operands", "def rest(a, b):\n    return a % b\n", "return b % a", "a % b"),
    ("comparison", CLAMP, "if x <= low:", "if x < low:"),
    ("comparison", "def same(a, b):\n    return a == b\n", "return a != b", "a == b"),
    ("comparison", "def big(a):\n    return a >= 10\n", "return a > 10", "a >= 10"),
    ("dropped_branch", CLAMP, "    if x > high:", "    if x < low:"),
    ("dropped_branch", "def sign(x):\n    if x < 0:\n        return -1\n    elif x == 0:\n        return 0\n"
                       "    else:\n        return 1\n", "    else:", "elif x == 0:"),
    ("dropped_branch", "def parity(x):\n    if x % 2:\n        return 'odd'\n    else:\n        return 'even'\n",
     "        return 'odd'", "    else:"),
    ("dropped_return", "def first_even(xs):\n    for x in xs:\n        if x % 2 == 0:\n            print(x)\n"
                       "            return x\n    return None\n", "            print(x)", "            return x"),
    ("bool_op", "def inside(x, lo, hi):\n    return lo <= x and x <= hi\n", "lo <= x or x <= hi", "x and x"),
    ("bool_op", "def either(a, b):\n    return a or b\n", "return a and b", "a or b"),
]


@pytest.mark.parametrize(("kind", "solution", "present", "absent"), CASES)
def test_each_kind_applies_and_parses(kind, solution, present, absent):
    mutants = [m for m in candidates(solution, seed=0, key="p") if m.kind == kind]
    matching = [m for m in mutants if present in m.code and absent not in m.code]
    assert matching, [m.code for m in mutants]
    mutant = matching[0]
    assert mutant.code != solution
    ast.parse(mutant.code)
    assert mutant.description.startswith("line ") and "\n" not in mutant.description


def test_every_kind_is_exercised():
    assert {kind for kind, *_ in CASES} == set(KINDS)


def test_edits_keep_the_rest_of_the_text():
    mutants = candidates(CLAMP, seed=0, key="p")
    assert {m.kind for m in mutants} == {"comparison", "dropped_branch"}
    for mutant in mutants:
        # The comment and the untouched lines survive: the edit is spliced, not the whole module re-printed.
        assert "    # keep x inside [low, high]\n" in mutant.code
        assert mutant.code.endswith("    return x\n")
    dropped = [m for m in mutants if m.kind == "dropped_branch" and "x < low" not in m.code]
    assert dropped[0].code == CLAMP.replace("    if x < low:\n        return low\n", "")
    assert dropped[0].description == "line 3: the `if x < low:` branch removed"


def test_candidates_are_distinct_and_mean_something_else():
    solution = "def f(a, b):\n    if a - b > 0:\n        return a - b\n    return 0\n"
    mutants = candidates(solution, seed=0, key="p")
    meanings = [ast.dump(ast.parse(m.code)) for m in mutants]
    assert len(meanings) == len(set(meanings))
    assert ast.dump(ast.parse(solution)) not in meanings


def test_order_is_fixed_by_seed_and_key():
    solution = "def f(xs, k):\n    if k < 0 or not xs:\n        return 0\n    return sum(xs[:k]) - xs[0] // 2\n"
    first = candidates(solution, seed=3, key="parent-1")
    assert [m.code for m in first] == [m.code for m in candidates(solution, seed=3, key="parent-1")]
    orders = {tuple(m.code for m in candidates(solution, seed=seed, key=key))
              for seed in range(4) for key in ("parent-1", "parent-2")}
    assert len(orders) > 1
    assert all(sorted(order) == sorted(m.code for m in first) for order in orders)


def test_kinds_alternate_at_the_front():
    # Six constants and one comparison: the comparison still comes first or second, not after the off-by-ones.
    solution = "def f(x):\n    return [1, 2, 3, 4, 5, 6] if x < 0 else []\n"
    kinds = [m.kind for m in candidates(solution, seed=0, key="p")]
    assert "comparison" in kinds[:2]


def test_early_return_only_when_not_the_functions_last_statement():
    # The inner function's return is its own last statement, not an early one.
    solution = "def outer(xs):\n    def key(x):\n        y = -x\n        return y\n    return sorted(xs, key=key)\n"
    assert not [m for m in candidates(solution, seed=0, key="p") if m.kind == "dropped_return"]


def test_no_swap_with_a_literal():
    mutants = candidates("def f(n, k):\n    return (n - 1) % k\n", seed=0, key="p")
    swapped = sorted(m.code for m in mutants if m.kind == "swapped_operands")
    assert swapped == ["def f(n, k):\n    return k % (n - 1)\n"]


def test_no_negative_literal_after_a_plus():
    mutants = candidates("def f(a):\n    return a + 0\n", seed=0, key="p")
    assert [m.code for m in mutants] == ["def f(a):\n    return a + 1\n"]


@pytest.mark.parametrize("solution", [
    "def ident(x):\n    return x\n",
    "def add(a, b):\n    return a + b\n",
    "def broken(:\n    return\n",
    "",
])
def test_nothing_to_mutate(solution):
    assert candidates(solution, seed=0, key="p") == []
