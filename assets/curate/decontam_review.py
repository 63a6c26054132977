"""Static review of a function the decontamination solver wrote, before it meets any benchmark test.

The bundled 1.5B solver often writes a right idea that cannot run: `math.log2` without `import math`, or a problem
that talks about reading input solved with `input()` and `print()` although the prompt asks for parameters and a
return value. Either way the benchmark's tests fail for a reason that has nothing to do with the task, and a
contaminated row slips through. Missing standard-library imports are added here (pyflakes finds the undefined
names); what is left is named in imperative words the model can act on, and the solver sends it back as one repair
turn (assets/prompts/decontam_solver_repair.v1.txt). The input/output rules are ours: no checker knows that this
code must be a pure function.

    add_missing_imports("def f(n):\\n    return sqrt(n)\\n")   # "from math import sqrt\\n\\ndef f(n): ..."
    review("def f(n):\\n    return mystery(n)\\n")   # ['it uses `mystery` but never imports or defines it']
"""

from __future__ import annotations

import ast
import importlib
import sys

from pyflakes import checker, messages

# Where a missing name is looked up, in this order, when it is not a module itself (`log2` -> `from math import
# log2`). Hand-written: the auto-import tools on the registry pull in formatters and CLIs for these ten lines.
IMPORT_FROM = ("math", "collections", "itertools", "functools", "typing", "heapq", "bisect", "string", "operator",
               "re")


def _name(node: ast.expr) -> str:
    """`sys.stdin.readline` -> "sys.stdin.readline"; "" for anything but names and attributes."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _name(node.value)
        return f"{inner}.{node.attr}" if inner else ""
    return ""


def _returns_value(fn: ast.FunctionDef) -> bool:
    """Whether the function itself (not a nested one) has a `return <value>`."""
    todo = list(fn.body)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Return) and node.value is not None:
            return True
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            todo.extend(ast.iter_child_nodes(node))
    return False


def _io_problems(tree: ast.Module) -> list[str]:
    reads = prints = False
    for fn in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)):
        returns = _returns_value(fn)
        for node in ast.walk(fn):
            if isinstance(node, ast.Call):
                called = _name(node.func)
                if called in ("input", "open") or called.startswith(("sys.stdin", "fileinput.")):
                    reads = True
                elif called in ("print", "sys.stdout.write") and not returns:
                    prints = True
            elif isinstance(node, ast.Attribute) and _name(node) == "sys.stdin":
                reads = True  # `for line in sys.stdin`
    found = []
    if reads:
        found.append("it reads input (input(), sys.stdin or a file): delete that reading and make the values it read "
                     "the function's parameters")
    if prints:
        found.append("it prints instead of returning: delete every print() call and `return` what it printed (a list "
                     "when it printed several values, True or False for yes/no answers)")
    return found


def _undefined(tree: ast.Module) -> list[str]:
    return sorted({m.message_args[0] for m in checker.Checker(tree).messages if isinstance(m, messages.UndefinedName)})


def _import_for(name: str) -> str | None:
    if name in sys.stdlib_module_names:
        return f"import {name}"
    for module in IMPORT_FROM:
        if not name.startswith("_") and hasattr(importlib.import_module(module), name):
            return f"from {module} import {name}"
    return None


def add_missing_imports(code: str) -> str:
    """The code with an import line on top for each undefined name the standard library has (`math`, `log2`);
    unchanged when it does not parse or misses nothing."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return code
    lines = [line for line in map(_import_for, _undefined(tree)) if line]
    return "\n".join(lines) + "\n\n" + code if lines else code


def review(code: str | None) -> list[str]:
    """Why this code cannot stand in for a benchmark function as it is (empty: nothing found)."""
    if code is None:
        return ["the reply has no Python code block"]
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return ["the code does not parse"]
    if not any(isinstance(n, ast.FunctionDef) for n in tree.body):
        return ["there is no top-level function"]
    found = [f"it uses `{name}` but never imports or defines it" for name in _undefined(tree)]
    return found + _io_problems(tree)
