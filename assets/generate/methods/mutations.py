"""Realistic one-edit bugs in a Python solution, for the code_correction method. Pure Python, stdlib only.

    candidates(solution, seed, key) -> list[Mutant]   # every distinct mutant, in a seeded order

Kinds (KINDS): `off_by_one` (an integer constant, or a range() / slice bound, moved by one), `swapped_operands` (of
-, /, // or %, neither a literal), `comparison` (< and <=, > and >=, == and != exchanged), `dropped_branch` (an `if`
without `else`, an `elif` or an `else` block removed: a forgotten case), `dropped_return` (an early return removed
from a block that does more), `bool_op` (`and` and `or` exchanged).

Each edit is spliced into the original text at the edited node's position, so the buggy code keeps the solution's
formatting and comments; only the edited expression is re-printed. Nothing here runs the code: which mutants the
tests catch is for the sandbox to say.
"""

from __future__ import annotations

import ast
import random
import re
from dataclasses import dataclass

# Bump when the kinds, the edits or their order change: the method's config fingerprint includes it.
MUTATIONS_VERSION = 1
KINDS = ("off_by_one", "swapped_operands", "comparison", "dropped_branch", "dropped_return", "bool_op")

SWAPPABLE = (ast.Sub, ast.Div, ast.FloorDiv, ast.Mod)
FLIPPED = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq, ast.NotEq: ast.Eq}
# Bounds that read naturally with "+ 1" appended; a bound that is already `x +/- <int>` is covered by the constant.
BOUND_NODES = (ast.Name, ast.Attribute, ast.Call, ast.Subscript)
TIGHT_OPS = (ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow)
ELSE_LINE = re.compile(r"\s*else\s*:")
SHOWN_CHARS = 60


@dataclass(frozen=True)
class Mutant:
    kind: str
    description: str  # one line, e.g. "line 3: `i < n` -> `i <= n`"
    code: str


@dataclass(frozen=True)
class _Edit:
    kind: str
    start: int  # character offsets into the source
    end: int
    text: str
    description: str


class _Source:
    """The solution's text with ast positions (1-based lines, UTF-8 byte columns) turned into character offsets."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.lines = text.splitlines(keepends=True)
        self.starts = [0]
        for line in self.lines:
            self.starts.append(self.starts[-1] + len(line))

    def offset(self, lineno: int, col: int = 0) -> int:
        if lineno > len(self.lines):
            return len(self.text)
        line = self.lines[lineno - 1]
        return self.starts[lineno - 1] + len(line.encode()[:col].decode(errors="ignore"))

    def span(self, node: ast.AST) -> tuple[int, int]:
        return self.offset(node.lineno, node.col_offset), self.offset(node.end_lineno, node.end_col_offset)

    def segment(self, node: ast.AST) -> str:
        start, end = self.span(node)
        return self.text[start:end]

    def line(self, lineno: int) -> str:
        return self.lines[lineno - 1] if 0 < lineno <= len(self.lines) else ""

    def owns_lines(self, node: ast.stmt) -> bool:
        """Whether the statement has its lines to itself: only indentation before it, only a comment after it."""
        start, end = self.span(node)
        before = self.text[self.starts[node.lineno - 1]:start]
        after = self.text[end:self.starts[min(node.end_lineno, len(self.lines))]]
        return not before.strip() and (not after.strip() or after.strip().startswith("#"))

    def indent(self, lineno: int) -> str:
        line = self.line(lineno)
        return line[:len(line) - len(line.lstrip())]

    def lines_span(self, first: int, last: int) -> tuple[int, int]:
        """Offsets of whole lines first..last, newline included."""
        return self.starts[first - 1], self.starts[min(last, len(self.lines))]


def _shown(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS - 3] + "..."


def _replace(kind: str, source: _Source, node: ast.AST, text: str, what: str = "") -> _Edit:
    start, end = source.span(node)
    before = source.text[start:end]
    return _Edit(kind, start, end, text, f"line {node.lineno}: {what}`{_shown(before)}` -> `{_shown(text)}`")


def _int_value(node: ast.AST) -> int | None:
    """The value of an int literal, `-<int>` included; None for anything else (bools too)."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _int_value(node.operand)
        return -inner if inner is not None and isinstance(node.operand, ast.Constant) else None
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    return None


def _constant_edits(tree: ast.AST, source: _Source) -> list[_Edit]:
    negated = {id(n.operand) for n in ast.walk(tree) if isinstance(n, ast.UnaryOp) and _int_value(n) is not None}
    # `n - 1` may become `n - 0` or `n - 2`, but `n + 0` never `n + -1`: nobody writes that by accident.
    right_operands = {id(n.right) for n in ast.walk(tree) if isinstance(n, ast.BinOp)}
    edits = []
    for node in ast.walk(tree):
        value = _int_value(node)
        if value is None or id(node) in negated:
            continue
        for new in (value + 1, value - 1):
            if new >= 0 or value < 0 or id(node) not in right_operands:
                edits.append(_replace("off_by_one", source, node, repr(new)))
    return edits


def _is_plain_bound(node: ast.AST | None) -> bool:
    if isinstance(node, BOUND_NODES):
        return True
    return isinstance(node, ast.BinOp) and isinstance(node.op, TIGHT_OPS)


def _bound_edits(tree: ast.AST, source: _Source) -> list[_Edit]:
    bounds = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range":
            bounds += [("range() bound ", arg) for arg in node.args[:2]]
        elif isinstance(node, ast.Slice):
            bounds += [("slice bound ", bound) for bound in (node.lower, node.upper)]
    edits = []
    for what, bound in bounds:
        if _is_plain_bound(bound):
            text = source.segment(bound)
            edits += [_replace("off_by_one", source, bound, f"{text} {sign} 1", what) for sign in ("+", "-")]
    return edits


def _swappable(node: ast.BinOp) -> bool:
    """Two different operands, neither a literal: `b - a` for `a - b` is a slip, `1 - n` for `n - 1` is not."""
    literal = (ast.Constant, ast.UnaryOp)
    return (not isinstance(node.left, literal) and not isinstance(node.right, literal)
            and ast.dump(node.left) != ast.dump(node.right))


def _operator_edits(tree: ast.AST, source: _Source) -> list[_Edit]:
    edits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp) and isinstance(node.op, SWAPPABLE) and _swappable(node):
            swapped = ast.BinOp(node.right, node.op, node.left)
            edits.append(_replace("swapped_operands", source, node, ast.unparse(swapped)))
        elif isinstance(node, ast.Compare):
            for i, op in enumerate(node.ops):
                if type(op) in FLIPPED:
                    ops = list(node.ops)
                    ops[i] = FLIPPED[type(op)]()
                    flipped = ast.Compare(node.left, ops, node.comparators)
                    edits.append(_replace("comparison", source, node, ast.unparse(flipped)))
        elif isinstance(node, ast.BoolOp):
            other = ast.Or() if isinstance(node.op, ast.And) else ast.And()
            edits.append(_replace("bool_op", source, node, ast.unparse(ast.BoolOp(other, node.values))))
    return edits


def _blocks(tree: ast.AST):
    """Every statement list of the tree with the statement that owns it (None for the module)."""
    for node in ast.walk(tree):
        for name in ("body", "orelse", "finalbody"):
            block = getattr(node, name, None)
            if isinstance(block, list) and block and isinstance(block[0], ast.stmt):
                yield node, block


def _removal(kind: str, source: _Source, node: ast.stmt, block: list[ast.stmt], description: str) -> _Edit:
    """The statement's lines removed; `pass` in their place when it was the only statement of its block."""
    start, end = source.lines_span(node.lineno, node.end_lineno)
    text = f"{source.indent(node.lineno)}pass\n" if len(block) == 1 else ""
    return _Edit(kind, start, end, text, description)


def _is_elif(source: _Source, node: ast.If) -> bool:
    return source.text[source.offset(node.lineno, node.col_offset):].startswith("elif")


def _else_line(source: _Source, node: ast.If) -> int | None:
    """The line of the `else:` that opens a plain else block, or None (no else, an elif, or not found)."""
    if not node.orelse or (isinstance(node.orelse[0], ast.If) and _is_elif(source, node.orelse[0])):
        return None
    for lineno in range(node.body[-1].end_lineno + 1, node.orelse[0].lineno + 1):
        if ELSE_LINE.match(source.line(lineno)):
            return lineno
    return None


def _branch_edits(tree: ast.AST, source: _Source) -> list[_Edit]:
    edits = []
    for _, block in _blocks(tree):
        for node in block:
            if not isinstance(node, ast.If) or not source.owns_lines(node):
                continue
            test = _shown(source.segment(node.test))
            elif_ = _is_elif(source, node)
            else_line = _else_line(source, node)
            if not node.orelse and not elif_:
                edits.append(_removal("dropped_branch", source, node, block,
                                      f"line {node.lineno}: the `if {test}:` branch removed"))
            if else_line is not None:
                start, end = source.lines_span(else_line, node.orelse[-1].end_lineno)
                edits.append(_Edit("dropped_branch", start, end, "",
                                   f"line {else_line}: the `else` branch of `if {test}:` removed"))
            last = _elif_last_line(source, node, else_line) if elif_ else None
            if last is not None:
                start, end = source.lines_span(node.lineno, last)
                edits.append(_Edit("dropped_branch", start, end, "",
                                   f"line {node.lineno}: the `elif {test}:` branch removed"))
    return edits


def _elif_last_line(source: _Source, node: ast.If, else_line: int | None) -> int | None:
    """The last line of an elif branch's own lines (up to the next elif or else); None when that is unclear."""
    if not node.orelse:
        return node.end_lineno
    if else_line is not None:
        return else_line - 1
    first = node.orelse[0]
    return first.lineno - 1 if isinstance(first, ast.If) and _is_elif(source, first) else None


def _return_edits(tree: ast.AST, source: _Source) -> list[_Edit]:
    """Early returns removed: a return that is not its function's last statement, in a block that does more (a
    return alone in an `if` is the dropped branch's case)."""
    functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    finals = {id(f.body[-1]) for f in functions}
    edits = []
    for owner, block in _blocks(tree):
        if len(block) < 2 or owner is tree:
            continue
        for node in block:
            if isinstance(node, ast.Return) and id(node) not in finals and source.owns_lines(node):
                shown = _shown(source.segment(node))
                edits.append(_removal("dropped_return", source, node, block,
                                      f"line {node.lineno}: early `{shown}` removed"))
    return edits


def _apply(source: _Source, edit: _Edit) -> str:
    return source.text[:edit.start] + edit.text + source.text[edit.end:]


def _order(mutants: list[Mutant], seed: int | None, key: str) -> list[Mutant]:
    """A seeded order that alternates kinds (in a seeded kind order), so a solution with many constants does not
    make nearly every bug an off-by-one."""
    rng = random.Random(f"{seed}:{key}")
    by_kind: dict[str, list[Mutant]] = {}
    for mutant in mutants:
        by_kind.setdefault(mutant.kind, []).append(mutant)
    kinds = sorted(by_kind)
    rng.shuffle(kinds)
    for kind in kinds:
        rng.shuffle(by_kind[kind])
    ordered = []
    for i in range(max((len(v) for v in by_kind.values()), default=0)):
        ordered += [by_kind[kind][i] for kind in kinds if i < len(by_kind[kind])]
    return ordered


def candidates(solution: str, seed: int | None, key: str) -> list[Mutant]:
    """Every distinct mutant of `solution` that parses and differs from it in meaning, ordered by (seed, key);
    empty when the solution does not parse or has nothing to mutate."""
    try:
        tree = ast.parse(solution)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    source = _Source(solution)
    edits = (_constant_edits(tree, source) + _bound_edits(tree, source) + _operator_edits(tree, source)
             + _branch_edits(tree, source) + _return_edits(tree, source))
    original = ast.dump(tree)
    seen: set[str] = set()
    mutants = []
    for edit in edits:
        code = _apply(source, edit)
        try:
            meaning = ast.dump(ast.parse(code))
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
        if meaning == original or meaning in seen:
            continue
        seen.add(meaning)
        mutants.append(Mutant(edit.kind, edit.description, code))
    return _order(mutants, seed, key)
