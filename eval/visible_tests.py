"""The tests a model may see at evaluation time, and the prompt it is shown.

Leak-free feedback rests on this split: HumanEval's visible tests are the prompt's own examples (doctests and
"f(x) == y" / "f(x) ➞ y" lines) turned into checks; MBPP's is the first listed test, and the model's prompt shows only
that one (as EvalPlus' MBPP+ prompts do). The hidden tests (`item.test`) are run only to score the final answer.

    tests = visible_tests(item)          # VisibleTests(checks=[VisibleCheck(call, expected)], fixtures)
    script = tests.script()              # run after a solution: exits 1 listing each failing check and its result
    prompt = visible_prompt(item)        # what the model is asked
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

from eval.benchmarks import BenchmarkItem
from eval.docstring_examples import examples

MBPP_INTRO = "Your code should pass this test:"
# What every visible-test program starts with: a comparison that tolerates float rounding, as a reader would.
PREAMBLE = '''import math as _math
import sys as _sys


def _same(got, want):
    if isinstance(want, float) or isinstance(got, float):
        try:
            return _math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-9)
        except TypeError:
            return False
    return got == want


_failures = []
'''
EPILOGUE = '''
if _failures:
    print(f"{len(_failures)} of {_total} example tests failed:", file=_sys.stderr)
    print("\\n".join(_failures), file=_sys.stderr)
    raise SystemExit(1)
print(f"all {_total} example tests passed")
'''


@dataclass(frozen=True)
class VisibleCheck:
    call: str  # an expression that calls the entry point
    expected: str | None  # the expression it must equal; None: `call` itself must be true

    @property
    def label(self) -> str:
        return f"assert {self.call} == {self.expected}" if self.expected is not None else f"assert {self.call}"

    def code(self) -> str:
        """A block that records a failure (with what the call returned or raised) instead of stopping, so the
        feedback can list every failing example."""
        test = f"_same(_got, ({self.expected}))" if self.expected is not None else "_got"
        return (f"try:\n    _got = ({self.call})\n    _ok = bool({test})\nexcept Exception as _exc:\n"
                f"    _failures.append({self.label!r} + '  # raised ' + type(_exc).__name__ + ': ' + str(_exc)[:300])"
                f"\nelse:\n    if not _ok:\n        _failures.append({self.label!r} + '  # got ' + repr(_got)[:300])\n")


@dataclass(frozen=True)
class VisibleTests:
    checks: tuple[VisibleCheck, ...]
    fixtures: str = ""  # statements the checks rely on (MBPP's test_setup_code)
    dropped: tuple[VisibleCheck, ...] = field(default=())  # examples the canonical solution fails (canonical_checked)

    def script(self) -> str:
        """The test code that runs after a solution (eval.checked puts them together)."""
        body = "\n".join(check.code() for check in self.checks)
        parts = [PREAMBLE, self.fixtures, f"_total = {len(self.checks)}", body, EPILOGUE]
        return "\n\n".join(p for p in parts if p.strip()) + "\n"

    def text(self) -> str:
        """The checks as asserts, as a model may be shown them."""
        return "\n".join(check.label for check in self.checks)


def _docstring(item: BenchmarkItem) -> str:
    tree = ast.parse(item.prompt)
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == item.entry_point:
            return ast.get_docstring(node, clean=True) or ""
    return ""


def humaneval_visible(item: BenchmarkItem) -> VisibleTests:
    docstring = _docstring(item)
    return VisibleTests(tuple(VisibleCheck(call, want) for call, want in examples(docstring, item.entry_point)))


def _mbpp_statements(item: BenchmarkItem) -> tuple[list[str], list[str]]:
    """(asserts, other statements) of an MBPP test script, as source text, in order."""
    tree = ast.parse(item.test)
    asserts, others = [], []
    for node in tree.body:
        (asserts if isinstance(node, ast.Assert) else others).append(ast.get_source_segment(item.test, node))
    return asserts, others


def _assert_check(statement: str) -> VisibleCheck:
    node = ast.parse(statement).body[0].test
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], ast.Eq):
        return VisibleCheck(ast.get_source_segment(statement, node.left),
                            ast.get_source_segment(statement, node.comparators[0]))
    return VisibleCheck(ast.get_source_segment(statement, node), None)


def mbpp_visible(item: BenchmarkItem) -> VisibleTests:
    asserts, others = _mbpp_statements(item)
    return VisibleTests((_assert_check(asserts[0]),) if asserts else (), fixtures="\n".join(others))


def is_mbpp(item: BenchmarkItem) -> bool:
    return item.benchmark.startswith("mbpp")


def visible_tests(item: BenchmarkItem) -> VisibleTests:
    return mbpp_visible(item) if is_mbpp(item) else humaneval_visible(item)


def visible_prompt(item: BenchmarkItem) -> str:
    """The task as the model sees it: HumanEval's prompt (signature, docstring, its examples); MBPP's description
    with only the first test."""
    if not is_mbpp(item):
        return item.prompt
    asserts, _ = _mbpp_statements(item)
    return f"{item.description}\n{MBPP_INTRO}\n\n{asserts[0]}" if asserts else item.description


def hidden_only_asserts(item: BenchmarkItem) -> list[str]:
    """The hidden tests' assert statements that are not among the visible ones: what must never reach the model."""
    if is_mbpp(item):
        asserts = _mbpp_statements(item)[0]
        return [a for a in asserts[1:] if a != asserts[0]]
    tree = ast.parse(item.test)
    return [ast.get_source_segment(item.test, n) for n in ast.walk(tree) if isinstance(n, ast.Assert)]


def canonical_checked(items: list[BenchmarkItem], run_checked) -> dict[str, VisibleTests]:
    """Each item's visible tests without the examples its canonical solution fails (HumanEval/47's median example is
    wrong, /80's arguments lack quotes): a model shown them would be told a correct answer is wrong. Uses only the
    benchmark's reference solution, never its hidden tests. `run_checked([(id, solution, tests)]) -> verdicts` runs
    them in the sandbox (SandboxRunner.run_checked), one program per example."""
    tests = {item.task_id: visible_tests(item) for item in items}
    rows = [(f"{item.task_id}#{j}", item.solution, VisibleTests((check,), tests[item.task_id].fixtures).script())
            for item in items for j, check in enumerate(tests[item.task_id].checks)]
    passed = {row[0] for row, verdict in zip(rows, run_checked(rows)) if verdict.passed}
    result = {}
    for item in items:
        found = tests[item.task_id]
        keep = [c for j, c in enumerate(found.checks) if f"{item.task_id}#{j}" in passed]
        drop = [c for j, c in enumerate(found.checks) if f"{item.task_id}#{j}" not in passed]
        result[item.task_id] = VisibleTests(tuple(keep), found.fixtures, tuple(drop))
    return result
