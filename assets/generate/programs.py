"""What the generation stages run in the sandbox, and how a run is reported back.

- `program_with_tests(solution, tests)`: the solution followed by its tests, run as one script.
- `trivial_mutant(solution)`: every function body replaced by `return None` (the test-quality gate: good tests fail
  on it).
- `execution_feedback(verdict)`: the truncated output a model is shown after a failing run.
- `verdict_row(verdict, turn)`: the provenance stored with every row (schemas.VERDICT).
"""

from __future__ import annotations

import ast
import functools
import json
import re

from resources.sandbox import Verdict

FEEDBACK_CHARS = 1500
FEEDBACK_LINES = 25
STORED_CHARS = 2000


def program_with_tests(solution: str, tests: str) -> str:
    return f"{solution.rstrip()}\n\n\n{explain_asserts(tests).strip()}\n"


GOT = "_crucible_got"


@functools.lru_cache(maxsize=4096)  # the same tests are joined to every answer, sample and repair of a problem
def explain_asserts(tests: str) -> str:
    """Top-level `assert a == b` without a message becomes `got = a; assert got == b, "<the assert>  got: <repr>"`.

    Code read from a pipe has no source lines in its tracebacks, so a bare failing assert shows only
    "AssertionError" and a line number; a model told which assert failed and what the call returned can repair
    the tests or the solution. Each call is still evaluated once. Tests that do not parse are returned unchanged."""
    try:
        tree = ast.parse(tests)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return tests
    body = []
    for node in tree.body:
        compare = node.test if isinstance(node, ast.Assert) else None
        if (compare is None or node.msg is not None or not isinstance(compare, ast.Compare)
                or len(compare.ops) != 1 or not isinstance(compare.ops[0], ast.Eq)):
            body.append(node)
            continue
        source = ast.get_source_segment(tests, node) or ast.unparse(node)
        got = ast.Name(GOT, ast.Store())
        body.append(ast.copy_location(ast.Assign([got], compare.left), node))
        message = ast.BinOp(ast.Constant(f"{source}\n  got: "), ast.Add(),
                            ast.Subscript(ast.Call(ast.Name("repr", ast.Load()), [ast.Name(GOT, ast.Load())], []),
                                          ast.Slice(upper=ast.Constant(300)), ast.Load()))
        check = ast.Compare(ast.Name(GOT, ast.Load()), compare.ops, compare.comparators)
        body.append(ast.copy_location(ast.Assert(check, message), node))
    tree.body = body
    return ast.unparse(ast.fix_missing_locations(tree))


class _ReturnNone(ast.NodeTransformer):
    def _gut(self, node):
        docstring = ast.get_docstring(node)
        node.body = ([ast.Expr(ast.Constant(docstring))] if docstring else []) + [ast.Return(ast.Constant(None))]
        return node

    def visit_FunctionDef(self, node):  # noqa: N802 (ast visitor naming)
        return self._gut(node)

    def visit_AsyncFunctionDef(self, node):  # noqa: N802
        return self._gut(node)


def trivial_mutant(solution: str) -> str | None:
    """The solution with every function and method body replaced by `return None`; None if it has no function."""
    try:
        tree = ast.parse(solution)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    if not any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) for n in ast.walk(tree)):
        return None
    return ast.unparse(ast.fix_missing_locations(_ReturnNone().visit(tree)))


# Stack frames inside a language's own runtime (Node's loader, the JDK): they say nothing about the program and would
# push the error message itself out of the lines a model is shown.
RUNTIME_FRAME = re.compile(r"^\s*at (?:.*\bnode:internal/|(?:java\.base|jdk\.internal)/)")


def _without_runtime_frames(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not RUNTIME_FRAME.match(line))


def _tail(text: str, chars: int, lines: int) -> str:
    kept = text.strip("\n").splitlines()[-lines:]
    out = "\n".join(kept)
    return out if len(out) <= chars else "..." + out[-chars:]


def _head(text: str, chars: int, lines: int) -> str:
    kept = text.strip("\n").splitlines()[:lines]
    out = "\n".join(kept)
    return out if len(out) <= chars else out[:chars] + "..."


def execution_feedback(verdict: Verdict) -> str:
    """What a model sees after a failing run: the status and the end of stderr (where a traceback's error is); for a
    build that failed, the start of the compiler's output (where its first error is; the end is notes)."""
    if verdict.status == "failed" and verdict.phase == "compile":
        return f"Compilation failed.\n{_head(verdict.stderr or '', FEEDBACK_CHARS, FEEDBACK_LINES)}".strip()
    if verdict.status == "timeout":
        head = f"Timed out after {verdict.limits.get('timeout_s', '?')} s (possibly an infinite loop or slow code)."
    elif verdict.status == "memory":
        head = "Killed: the program exceeded the memory limit."
    elif verdict.status == "error":
        head = "The sandbox could not run the program."
    else:
        head = f"Exit status {verdict.exit_code}."
    body = _tail(_without_runtime_frames(verdict.stderr or verdict.stdout or ""), FEEDBACK_CHARS, FEEDBACK_LINES)
    return f"{head}\n{body}".strip()


def verdict_row(verdict: Verdict, turn: int) -> dict:
    return {"turn": turn, "status": verdict.status, "exit_code": verdict.exit_code, "wall_ms": float(verdict.wall_ms),
            "backend": verdict.backend, "limits": json.dumps(verdict.limits, sort_keys=True),
            "runner_version": verdict.runner_version, "stdout": (verdict.stdout or "")[-STORED_CHARS:],
            "stderr": (verdict.stderr or "")[-STORED_CHARS:]}


OUTPUT_MARK = "@@crucible-output@@"


def _equality_asserts(tree: ast.Module) -> list[int]:
    """Indexes of top-level `assert <call> == <expected>` statements without a message."""
    return [i for i, node in enumerate(tree.body)
            if isinstance(node, ast.Assert) and node.msg is None and isinstance(node.test, ast.Compare)
            and len(node.test.ops) == 1 and isinstance(node.test.ops[0], ast.Eq)]


def outputs_program(solution: str, tests: str) -> str | None:
    """A program that prints, for every top-level `assert a == b` of the tests, the repr of `a` as the solution
    computes it (one marked line each, in order); the other statements run as they are. None when the tests do not
    parse or hold no such assert."""
    try:
        tree = ast.parse(tests)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    targets = _equality_asserts(tree)
    if not targets:
        return None
    lines = []
    for i, node in enumerate(tree.body):
        if i in targets:
            call = ast.unparse(node.test.left)
            lines.append(f"print({OUTPUT_MARK!r}, repr({call}))")
        else:
            lines.append(ast.unparse(node))
    return f"{solution.rstrip()}\n\n\n" + "\n".join(lines) + "\n"


def expected_from_outputs(tests: str, stdout: str) -> str | None:
    """The tests with each equality assert's expected value replaced by the output the program printed; None when
    an output is missing or is not a plain literal (so it could not be written back as an expected value)."""
    tree = ast.parse(tests)
    targets = _equality_asserts(tree)
    outputs = [line.split(" ", 1)[1] for line in stdout.splitlines() if line.startswith(OUTPUT_MARK + " ")]
    if len(outputs) != len(targets):
        return None
    for index, text in zip(targets, outputs):
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            return None
        if isinstance(value, float) and value != value:  # NaN never equals itself
            return None
        tree.body[index].test.comparators = [ast.parse(text, mode="eval").body]
    return ast.unparse(tree)
