"""Parsing teacher replies. Nothing here raises on bad model output: a reply that cannot be used becomes a reason.

    parse_problem_reply(text) -> ParsedProblem | Rejected   # "### Problem / ### Solution / ### Tests"
    extract_code(text, entry_point) -> str | None           # the programmer's code from an answer
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

FENCE = re.compile(r"```[ \t]*([\w+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.S)
# "### Problem", "## Tests:", "**Solution**", "Solution:" on a line of its own.
HEADING = re.compile(r"^[ \t]*(?:#{1,6}[ \t]*)?(?:\*\*)?[ \t]*(problem|task|solution|reference solution|tests?|"
                     r"unit tests?)[ \t]*(?:\*\*)?[ \t]*:?[ \t]*(?:\*\*)?[ \t]*$", re.I | re.M)
SECTION_OF = {"problem": "problem", "task": "problem", "solution": "solution", "reference solution": "solution",
              "test": "tests", "tests": "tests", "unit test": "tests", "unit tests": "tests"}


@dataclass
class ParsedProblem:
    instruction: str
    solution: str
    tests: str
    entry_point: str | None
    n_asserts: int


@dataclass
class Rejected:
    reason: str
    detail: str = ""


def code_blocks(text: str) -> list[tuple[str, str]]:
    """(language, code) for every fenced block; an unterminated last fence counts (replies cut at max_tokens)."""
    return [(lang.lower(), code.strip("\n")) for lang, code in FENCE.findall(text)]


PYTHON_FENCES = ("python", "py", "python3")


def fenced_blocks(text: str | None, fences: tuple[str, ...]) -> list[str]:
    """The non-empty code blocks of `text` whose fence label is one of `fences` ("" for unlabelled blocks)."""
    return [code for lang, code in code_blocks(text or "") if lang in fences and code.strip()]


def python_blocks(text: str | None) -> list[str]:
    """The non-empty Python blocks of `text`, unlabelled ones included."""
    return fenced_blocks(text, (*PYTHON_FENCES, ""))


def sections(text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    matches = list(HEADING.finditer(text))
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        name = SECTION_OF[match.group(1).lower()]
        found.setdefault(name, text[match.end():end].strip())
    return found


def parses(code: str) -> bool:
    try:
        ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True


def count_asserts(code: str) -> int:
    try:
        return sum(isinstance(node, ast.Assert) for node in ast.walk(ast.parse(code)))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return 0


def defined_functions(code: str) -> list[str]:
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    return [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]


def called_names(code: str) -> set[str]:
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return set()
    return {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}


def find_entry_point(solution: str, tests: str) -> str | None:
    """The first top-level function or class of the solution that the tests call."""
    called = called_names(tests)
    return next((name for name in defined_functions(solution) if name in called), None)


def _section_code(body: str | None) -> str | None:
    if body is None:
        return None
    blocks = python_blocks(body)
    if blocks:
        return "\n\n".join(blocks) if len(blocks) > 1 and all(parses(b) for b in blocks) else blocks[0]
    stripped = body.strip()
    return stripped if stripped and parses(stripped) else None


def parse_problem_reply(text: str, min_asserts: int = 3) -> ParsedProblem | Rejected:
    if not text or not text.strip():
        return Rejected("empty_reply")
    found = sections(text)
    instruction = found.get("problem")
    solution = _section_code(found.get("solution"))
    tests = _section_code(found.get("tests"))
    if solution is None or tests is None:
        # No usable headings: a problem statement, then a solution block, then a block of asserts.
        blocks = python_blocks(text)
        with_asserts = [b for b in blocks if count_asserts(b)]
        if solution is None and len(blocks) >= 2 and with_asserts:
            solution = next((b for b in blocks if b is not with_asserts[-1]), None)
        if tests is None and with_asserts:
            tests = with_asserts[-1]
        if instruction is None and blocks:
            first_fence = text.find("```")
            instruction = text[:first_fence].strip() or None
    if not instruction or not instruction.strip():
        return Rejected("no_problem_section")
    instruction = instruction.strip()
    # A problem statement that carries its own code block (an example) keeps it; it must not carry the solution.
    if solution is None:
        return Rejected("no_solution_code")
    if tests is None:
        return Rejected("no_tests_code")
    if not parses(solution):
        return Rejected("solution_syntax_error")
    entry_point = check_tests(solution, tests, min_asserts)
    if isinstance(entry_point, Rejected):
        return entry_point
    return ParsedProblem(instruction, solution, tests, entry_point, count_asserts(tests))


def check_tests(solution: str, tests: str, min_asserts: int) -> str | Rejected:
    """The entry point the tests call, or why the tests cannot be used with this solution."""
    if not parses(tests):
        return Rejected("tests_syntax_error")
    n_asserts = count_asserts(tests)
    if n_asserts < min_asserts:
        return Rejected("too_few_asserts", f"{n_asserts} < {min_asserts}")
    entry_point = find_entry_point(solution, tests)
    if entry_point is None:
        return Rejected("tests_do_not_call_solution")
    if entry_point in defined_functions(tests):
        return Rejected("tests_redefine_solution", entry_point)
    return entry_point


def extract_code(text: str, entry_point: str | None = None) -> str | None:
    """The programmer's solution: the last parseable Python block that defines the entry point, else the longest
    parseable block; None when the answer has no usable code."""
    blocks = [b for b in python_blocks(text) if parses(b)]
    if not blocks:
        return None
    if entry_point:
        defining = [b for b in blocks if entry_point in defined_functions(b)]
        if defining:
            return defining[-1]
    return max(blocks, key=len)
