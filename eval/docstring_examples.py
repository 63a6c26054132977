"""Worked examples in a docstring as (call, expected) pairs of Python source: doctests, one-line examples such as
`f(x) == y` / `f(x) ➞ y`, and examples in words (`For lst = [1,2,3] the output should be 6`, `Input:` / `Output:`).

    examples(docstring, "add")      # [("add(1, 2)", "3"), ...]; expected None: the call itself must be true

Sources are normalised with ast.unparse, so comments after an example (`f(15)   # == "db1111db"`) drop out. Nothing
here checks that an example is right; `visible_tests.canonical_checked` does, against the canonical solution.
"""

from __future__ import annotations

import ast
import re
import warnings

Example = tuple[str, "str | None"]  # (call, expected)
# "f(x) == y", "f(x) ➞ y", "f(x) => y", "f(x) ==> y", "f(x) -> y", "f(x) should return y", "f(x) returns y".
ARROW = re.compile(r"\s*(?:==>|=>|==|->|➞|→|\bshould\s+return\b|\breturns?\b)\s*")


def _expression(source: str) -> ast.expr | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ast.parse(source.strip(), mode="eval").body
    except (SyntaxError, ValueError, RecursionError):
        return None


def _calls(node: ast.expr | None, name: str) -> bool:
    return node is not None and any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == name
                                    for n in ast.walk(node))


class _JsonLiterals(ast.NodeTransformer):
    """`true`, `false` and `null` in an expected value mean Python's True, False and None (HumanEval/76)."""

    NAMES = {"true": True, "false": False, "null": None}

    def visit_Name(self, node: ast.Name) -> ast.AST:
        return ast.Constant(self.NAMES[node.id]) if node.id in self.NAMES else node


def _normal(source: str, expected: bool = False) -> str | None:
    """The expression as canonical source (comments dropped: `f(15)   # == "db1111db"`), or None."""
    node = _expression(source)
    if node is None:
        return None
    return ast.unparse(_JsonLiterals().visit(node) if expected else node)


def _pair(call: str, want: str | None) -> Example | None:
    call_src = _normal(call)
    want_src = _normal(want, expected=True) if want is not None else None
    if call_src is None or (want is not None and want_src is None):
        return None
    return (call_src, want_src)


def doctest_examples(docstring: str) -> list[tuple[str, str]]:
    """(source, expected output) of each `>>>` example. Written here instead of using doctest.DocTestParser, which
    rejects a whole docstring over one inconsistently indented line (HumanEval/51): a `>>>` line and its `...`
    continuations are the source; the lines after it, up to a blank line or the next `>>>`, are the output."""
    found, lines, i = [], [line.strip() for line in docstring.splitlines()], 0
    while i < len(lines):
        if not lines[i].startswith(">>>"):
            i += 1
            continue
        source = [lines[i][3:].strip()]
        i += 1
        while i < len(lines) and lines[i].startswith("..."):
            source.append(lines[i][3:].strip())
            i += 1
        want = []
        while i < len(lines) and lines[i] and not lines[i].startswith(">>>"):
            want.append(lines[i])
            i += 1
        found.append(("\n".join(source), "\n".join(want)))
    return found


def doctest_pairs(docstring: str, entry_point: str) -> list[Example]:
    """`>>> f(x)` followed by its output. An empty output means the call returns None, unless the source is itself
    a comparison (HumanEval/116 writes `>>> f(x) == y` with no output)."""
    pairs = []
    for source, want in doctest_examples(docstring):
        node = _expression(source)
        if not _calls(node, entry_point):
            continue
        if want:
            pairs.append(_pair(source, want))
        else:
            pairs.append(_pair(source, None if isinstance(node, ast.Compare) else "None"))
    return [p for p in pairs if p is not None]


def _expected_candidates(want: str) -> list[str]:
    """What may follow an arrow: the value itself, without end punctuation, or the end of a worked sum
    (`-> 19 - 5 - 6 = 8`)."""
    return [want, want.rstrip(".,;"), want.rsplit("=", 1)[-1].strip().rstrip(".,;")]


def arrow_pairs(docstring: str, entry_point: str) -> list[Example]:
    """One-line examples outside doctests: `f(x) == y`, `for f(x) == y`, `* f(x) => y`, `f(x) ➞ y` and the like."""
    pairs = []
    for raw in docstring.splitlines():
        line = re.sub(r"^(?:[*-]\s+|for\s+|e\.g\.\s*|example:\s*)", "", raw.strip(), flags=re.I)
        if line.startswith(">>>") or f"{entry_point}(" not in line:
            continue
        for match in ARROW.finditer(line):
            call = line[:match.start()]
            if not isinstance(_expression(call), ast.Call) or not _calls(_expression(call), entry_point):
                continue
            found = (_pair(call, w) for w in _expected_candidates(line[match.end():].strip()) if w)
            pair = next((p for p in found if p is not None), None)
            if pair:
                pairs.append(pair)
            break
    return pairs


def worded_pairs(docstring: str, entry_point: str) -> list[Example]:
    """Examples given as arguments in words: `For lst = [1,2,3] the output should be 6` and
    `Input: grid = [...], k = 3` / `Output: [1, 2, 1]`. The arguments become a call (keyword arguments when named,
    which only works when the names are the parameters': the canonical-solution filter drops the rest)."""
    pairs = []
    lines = [line.strip() for line in docstring.splitlines() if line.strip()]
    for i, line in enumerate(lines):
        said = re.match(r"^for\s+(.+?),?\s+the\s+(?:output|result|answer)\s+should\s+be\s+(.+)$", line, re.I)
        if said:
            args, want = said.groups()
        elif line.lower().startswith("input:") and i + 1 < len(lines) and lines[i + 1].lower().startswith("output:"):
            args, want = line[6:], lines[i + 1][7:]
        else:
            continue
        found = (_pair(f"{entry_point}({args.strip()})", w) for w in _expected_candidates(want.strip()) if w)
        pair = next((p for p in found if p is not None), None)
        if pair:
            pairs.append(pair)
    return pairs


def examples(docstring: str, entry_point: str) -> list[Example]:
    """The first form that yields any: doctests, then one-line arrows, then worded examples; duplicates dropped."""
    found = (doctest_pairs(docstring, entry_point) or arrow_pairs(docstring, entry_point)
             or worded_pairs(docstring, entry_point))
    return list(dict.fromkeys(found))
