"""The static review of the solver's code: what it names, what it fixes by itself, and what it leaves alone."""

import pytest

from assets.curate.decontam_review import add_missing_imports, review


def test_missing_standard_library_names_get_import_lines():
    code = "def f(xs, n):\n    return math.floor(log2(n)) + len(Counter(xs)) + reduce(max, xs)\n"
    fixed = add_missing_imports(code)
    assert set(fixed.splitlines()[:4]) == {"from collections import Counter", "from functools import reduce",
                                           "from math import log2", "import math"}
    assert fixed.endswith(code) and review(fixed) == []
    compile(fixed, "fixed", "exec")


@pytest.mark.parametrize("code", [
    "def f(n):\n    return n + 1\n",  # nothing missing
    "def f(n):\n    return undefined_helper(n)\n",  # nothing the standard library has
    "def f(n:\n",  # does not parse
])
def test_code_that_needs_no_import_or_cannot_get_one_is_unchanged(code):
    assert add_missing_imports(code) == code


@pytest.mark.parametrize(("code", "expected"), [
    (None, ["the reply has no Python code block"]),
    ("def f(:\n", ["the code does not parse"]),
    ("x = 1\nprint(x)\n", ["there is no top-level function"]),
    ("def f(n):\n    return helper(n)\n", ["it uses `helper` but never imports or defines it"]),
    ("def f():\n    return int(input())\n", ["reads input"]),
    ("import sys\ndef f():\n    return max(len(line) for line in sys.stdin)\n", ["reads input"]),
    ("def f(path):\n    return open(path).read()\n", ["reads input"]),
    ("def f(words):\n    for w in words:\n        print(w)\n", ["prints instead of returning"]),
    ("def f():\n    n = int(input())\n    print(n * 2)\n", ["reads input", "prints instead of returning"]),
])
def test_review_names_what_keeps_a_function_from_being_called_by_tests(code, expected):
    found = review(code)
    assert len(found) == len(expected) and all(e in f for e, f in zip(expected, found))


def test_a_debugging_print_in_a_function_that_returns_is_fine():
    assert review("def f(xs):\n    print('debug', xs)\n    return sorted(xs)\n") == []
    # A nested helper's return does not count for the function that prints.
    assert review("def f(xs):\n    def key(x):\n        return -x\n    print(sorted(xs, key=key))\n") != []
