"""The languages seeds are read from: which file extensions each one owns, and its functions found with tree-sitter.

    language = language_for("src/lib.rs", ("rust", "go"))        # "rust"; None when no listed language owns the file
    functions, error_line = scan_functions(text, "rust")       # [(symbol, reason or None, code)], first bad line

Python is parsed with `ast` (seed_extract.py); every other language with its official tree-sitter grammar wheel, whose
compiled grammar ships inside the wheel (nothing is downloaded at run time).

What counts as a seed function, the analogue of Python's rules:
- a function defined at the top level, or in a namespace / module (C++ `namespace`, Rust `mod`, TypeScript
  `namespace`, PHP `namespace {}`); JavaScript and TypeScript `const f = (...) => ...` count too. Functions inside
  a class, `impl`, trait or interface are methods, and so are Go functions with a receiver and C++ definitions with a
  qualified name (`Box::size`: from outside, a namespace cannot be told from a class). In Java everything is a method:
  `static` methods are its functions;
- its doc comment, the docstring's analogue, is the run of comments directly above it (`///`, `/** */`, a block of
  `//` or `#` lines; no blank line between them and the function), kept in the seed with the attributes in between
  (Rust `#[inline]`). A `#!` line or a comment that ends a line of code is not part of it;
- it returns a value when its declared return type is not void (`void`, `()`, `!`, `never`, `Promise<void>`), or,
  without a declared type, when it holds a `return <value>` or `yield`, or is an arrow function with an expression
  body. A Rust function that ends in a tail expression declares `-> T`, so the type covers it. A shell function
  returns a value by writing it: `echo` or `printf`;
- a function whose text holds a parse error (tree-sitter `has_error`) is unfit ("syntax_error").
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import tree_sitter as ts

from assets.generate.config import PYTHON

ALL = "all"  # a source's `languages: all`
COMMENTS = frozenset({"comment", "line_comment", "block_comment"})
VOID_TYPES = frozenset({"void", "()", "!", "never", "Promise<void>", "undefined"})
VALUE_NODES = frozenset({"return_statement", "return_expression", "yield_expression"})
# Function-like nodes inside a function: their `return` is not the outer function's.
NESTED = frozenset({"arrow_function", "function_expression", "function", "generator_function", "closure_expression",
                    "lambda_expression", "func_literal", "anonymous_function", "function_definition",
                    "function_declaration", "function_item"})
C_FAMILY_BODIES = frozenset({"preproc_if", "preproc_ifdef", "preproc_else", "preproc_elif", "preproc_elifdef",
                             "declaration_list", "field_declaration_list", "linkage_specification"})
JS_FUNCTIONS = frozenset({"function_declaration", "generator_function_declaration"})
JS_VALUES = frozenset({"arrow_function", "function_expression", "function", "generator_function"})


@dataclass(frozen=True)
class SeedLanguage:
    name: str
    extensions: tuple[str, ...]
    grammar: str | None = None  # the tree-sitter module; None for Python (ast)
    entry: str = "language"  # its function returning the grammar
    generated: tuple[str, ...] = ()  # file name endings of generated code
    functions: frozenset[str] = frozenset()  # function nodes; methods when inside a class
    methods: frozenset[str] = frozenset()  # always methods (a Go receiver, a JavaScript class member)
    classes: frozenset[str] = frozenset()  # a function inside is a method
    scopes: frozenset[str] = frozenset()  # namespaces and modules: a function inside stays a function
    bodies: frozenset[str] = frozenset()  # walked through: class bodies, preprocessor blocks, `extern "C"`
    wrappers: frozenset[str] = frozenset()  # `export ...`, `template <...>`: part of the function they hold
    declarations: frozenset[str] = frozenset()  # `const f = () => ...`
    attributes: frozenset[str] = frozenset()  # kept with the function like Python's decorators
    return_field: str | None = None  # the field holding a declared return type
    static_functions: bool = False  # Java: a static method is a function


_C_LIKE = dict(functions=frozenset({"function_definition"}), bodies=C_FAMILY_BODIES, return_field="type")
_JS_LIKE = dict(functions=JS_FUNCTIONS, methods=frozenset({"method_definition"}), bodies=frozenset({"class_body"}),
                wrappers=frozenset({"export_statement"}),
                declarations=frozenset({"lexical_declaration", "variable_declaration"}))

# Order matters for extensions two languages share: `.h` is C unless the source reads C++ and not C.
LANGUAGES: dict[str, SeedLanguage] = {lang.name: lang for lang in (
    SeedLanguage(PYTHON, (".py",), generated=("_pb2.py", "_pb2_grpc.py")),
    SeedLanguage("c", (".c", ".h"), "tree_sitter_c", generated=(".pb-c.c", ".pb-c.h"), **_C_LIKE),
    SeedLanguage("cpp", (".cpp", ".cc", ".cxx", ".hpp", ".hh", ".hxx", ".h"), "tree_sitter_cpp",
                 generated=(".pb.cc", ".pb.h"), classes=frozenset({"class_specifier", "struct_specifier",
                                                                    "union_specifier"}),
                 scopes=frozenset({"namespace_definition"}), wrappers=frozenset({"template_declaration"}), **_C_LIKE),
    SeedLanguage("javascript", (".js", ".mjs", ".cjs"), "tree_sitter_javascript",
                 generated=(".min.js", ".bundle.js"), classes=frozenset({"class_declaration", "class"}), **_JS_LIKE),
    SeedLanguage("typescript", (".ts",), "tree_sitter_typescript", "language_typescript",
                 classes=frozenset({"class_declaration", "abstract_class_declaration", "class"}),
                 scopes=frozenset({"internal_module"}), return_field="return_type",
                 **{**_JS_LIKE, "bodies": frozenset({"class_body", "statement_block", "expression_statement"})}),
    SeedLanguage("java", (".java",), "tree_sitter_java",
                 functions=frozenset({"method_declaration", "constructor_declaration"}),
                 classes=frozenset({"class_declaration", "interface_declaration", "enum_declaration",
                                    "record_declaration"}),
                 bodies=frozenset({"class_body", "interface_body", "enum_body", "enum_body_declarations"}),
                 return_field="type", static_functions=True),
    SeedLanguage("rust", (".rs",), "tree_sitter_rust", functions=frozenset({"function_item"}),
                 classes=frozenset({"impl_item", "trait_item"}), scopes=frozenset({"mod_item"}),
                 bodies=frozenset({"declaration_list"}), attributes=frozenset({"attribute_item"}),
                 return_field="return_type"),
    SeedLanguage("go", (".go",), "tree_sitter_go", generated=(".pb.go", "_grpc.pb.go"),
                 functions=frozenset({"function_declaration"}), methods=frozenset({"method_declaration"}),
                 return_field="result"),
    SeedLanguage("bash", (".sh", ".bash"), "tree_sitter_bash", functions=frozenset({"function_definition"})),
    SeedLanguage("php", (".php",), "tree_sitter_php", "language_php", functions=frozenset({"function_definition"}),
                 methods=frozenset({"method_declaration"}),
                 classes=frozenset({"class_declaration", "interface_declaration", "trait_declaration",
                                    "enum_declaration"}),
                 scopes=frozenset({"namespace_definition"}),
                 bodies=frozenset({"declaration_list", "compound_statement"}), return_field="return_type"),
)}
LANGUAGE_NAMES = tuple(LANGUAGES)
GENERATED_SUFFIXES = tuple(suffix for lang in LANGUAGES.values() for suffix in lang.generated)


def extensions_of(languages: Iterable[str]) -> tuple[str, ...]:
    """The file endings the languages own, each once."""
    return tuple(dict.fromkeys(ext for name in languages for ext in LANGUAGES[name].extensions))


def language_for(path: str, languages: Iterable[str]) -> str | None:
    """The first of `languages` (in LANGUAGES order) that owns the path's extension."""
    wanted = set(languages)
    return next((name for name, lang in LANGUAGES.items()
                 if name in wanted and path.endswith(lang.extensions)), None)


@functools.cache
def grammar(language: str) -> ts.Language:
    lang = LANGUAGES[language]
    if lang.grammar is None:
        raise ValueError(f"{language} is parsed with ast, not tree-sitter")
    return ts.Language(getattr(importlib.import_module(lang.grammar), lang.entry)())


def parse(data: bytes, language: str) -> ts.Tree:
    # A Parser is cheap next to its Language (cached) and not safe to share between threads: one per file.
    return ts.Parser(grammar(language)).parse(data)


# -- finding functions -----------------------------------------------------------------------------------------------
def _name(node: ts.Node | None) -> str:
    return node.text.decode("utf-8", "replace") if node is not None else ""


def _declarator_name(node: ts.Node) -> ts.Node | None:
    """C and C++: the name at the bottom of `int *(*f)(...)`'s declarator chain."""
    current = node.child_by_field_name("declarator")
    while current is not None:
        inner = current.child_by_field_name("declarator")
        if inner is None and current.type == "reference_declarator":
            inner = current.named_children[-1] if current.named_children else None
        if inner is None:
            return current
        current = inner
    return None


def _function_value(declaration: ts.Node) -> tuple[ts.Node, ts.Node] | None:
    """`const f = (x) => ...`: (the name, the function) of the declaration's first declarator."""
    declarators = [c for c in declaration.named_children if c.type == "variable_declarator"]
    value = declarators[0].child_by_field_name("value") if declarators else None
    if value is not None and value.type in JS_VALUES:
        return declarators[0].child_by_field_name("name"), value
    return None


def _walk(node: ts.Node, lang: SeedLanguage, prefix: str, in_class: bool,
          anchor: ts.Node | None = None) -> Iterator[tuple[str, ts.Node, ts.Node, bool]]:
    """(symbol, function node, anchor, is a method): the anchor is the node the seed starts at (`export ...`)."""
    for child in node.named_children:
        kind = child.type
        if kind in lang.wrappers:
            yield from _walk(child, lang, prefix, in_class, anchor=child)
        elif kind in lang.functions or kind in lang.methods:
            name = child.child_by_field_name("name") or _declarator_name(child)
            method = in_class or kind in lang.methods or (name is not None and name.type == "qualified_identifier")
            if method and lang.static_functions and _is_static(child):
                method = False
            yield f"{prefix}{_name(name)}", child, anchor or child, method
        elif kind in lang.declarations and (found := _function_value(child)):
            yield f"{prefix}{_name(found[0])}", found[1], anchor or child, in_class
        elif kind in lang.classes or kind in lang.scopes:
            name = child.child_by_field_name("name") or child.child_by_field_name("type")
            yield from _walk(child, lang, f"{prefix}{_name(name) or kind}.", in_class or kind in lang.classes)
        elif kind in lang.bodies:
            yield from _walk(child, lang, prefix, in_class)


def walk_functions(root: ts.Node, language: str) -> Iterator[tuple[str, ts.Node, ts.Node, bool]]:
    """(symbol, function node, anchor, is a method) for every function and method under `root` of a parsed file."""
    return _walk(root, LANGUAGES[language], "", False)


def _is_static(node: ts.Node) -> bool:
    return any(m.type == "modifiers" and any(k.type == "static" for k in m.children) for m in node.children)


def _last_row(node: ts.Node) -> int:
    """The last line a node is on (a Rust `///` comment's node ends at the start of the next line)."""
    end = node.end_point
    return end.row - 1 if end.column == 0 and end.row > node.start_point.row else end.row


def _doc_start(anchor: ts.Node, lang: SeedLanguage, rows: list[bytes]) -> tuple[int, bool]:
    """(first line of the seed, whether it has a doc comment): comments and attributes right above the anchor."""
    start, documented = anchor.start_point.row, False
    node = anchor.prev_named_sibling
    while node is not None and (node.type in COMMENTS or node.type in lang.attributes):
        if _last_row(node) < start - 1 or rows[node.start_point.row][:node.start_point.column].strip():
            break  # a blank line in between, or a comment ending a line of code
        if node.type in COMMENTS and node.text.startswith(b"#!"):
            break
        start, documented = node.start_point.row, documented or node.type in COMMENTS
        node = node.prev_named_sibling
    return start, documented


def _returns_value(function: ts.Node, lang: SeedLanguage) -> bool:
    declared = function.child_by_field_name(lang.return_field) if lang.return_field else None
    if declared is not None:
        text = _name(declared).lstrip(":").strip()
        pointer = function.child_by_field_name("declarator")  # C's `void *f()` returns a pointer
        return text not in VOID_TYPES or (pointer is not None and pointer.type == "pointer_declarator")
    body = function.child_by_field_name("body")
    if function.type == "arrow_function" and body is not None and body.type != "statement_block":
        return True
    stack = list(function.named_children)
    while stack:
        node = stack.pop()
        if node.type in VALUE_NODES and (node.type == "yield_expression" or
                                         any(c.type not in COMMENTS for c in node.named_children)):
            return True
        if node.type == "command" and _name(node.child_by_field_name("name")) in ("echo", "printf"):
            return True
        if node.type not in NESTED:
            stack.extend(node.named_children)
    return False


def _snippet(rows: list[bytes], start: int, anchor: ts.Node) -> str:
    """Lines `start` to the anchor's last, without the code sharing its first or last line, outdented by the anchor's
    column (as Python's: textwrap.dedent would stop at a multi-line string starting at column 0)."""
    first, last = anchor.start_point, anchor.end_point
    lines = rows[start:_last_row(anchor) + 1]
    if _last_row(anchor) == last.row:
        lines[-1] = lines[-1][:last.column]
    own = first.row - start
    if lines[own][:first.column].strip():
        lines[own] = b" " * first.column + lines[own][first.column:]

    def strip(row: bytes) -> bytes:
        return row[min(first.column, len(row) - len(row.lstrip(b" \t"))):]

    return b"".join(strip(row) + b"\n" for row in lines).decode("utf-8", "replace")


def _first_error_line(root: ts.Node, spans: list[tuple[int, int]]) -> int | None:
    """1-based line of the first parse error that lies in none of the spans (the functions looked at)."""
    stack = [root]
    while stack:
        node = stack.pop()
        if not node.has_error:
            continue
        if node.is_error or node.is_missing:
            if not any(start <= node.start_byte < end for start, end in spans):
                return node.start_point.row + 1
            continue
        stack.extend(reversed(node.children))
    return None


def scan_functions(text: str, language: str, require_return: bool = True,
                   include_methods: bool = True) -> tuple[list[tuple[str, str | None, str]], int | None]:
    """((symbol, reason or None, code) for every function and method, line of the first parse error outside them or
    None). The reasons are Python's: method, syntax_error, no_docstring (no doc comment), no_return."""
    lang = LANGUAGES[language]
    data = text.encode("utf-8")
    root = parse(data, language).root_node
    rows = data.split(b"\n")
    found, spans = [], []
    for symbol, function, anchor, method in _walk(root, lang, "", False):
        spans.append((anchor.start_byte, anchor.end_byte))
        start, documented = _doc_start(anchor, lang, rows)
        code = _snippet(rows, start, anchor)
        if method and not include_methods:
            reason = "method"
        elif anchor.has_error:
            reason = "syntax_error"
        elif not documented:
            reason = "no_docstring"
        elif require_return and not _returns_value(function, lang):
            reason = "no_return"
        else:
            reason = None
        found.append((symbol, reason, code))
    return found, _first_error_line(root, spans) if root.has_error else None
