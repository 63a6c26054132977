"""What a generation method needs to know of the language it writes: its code fences, whether code parses, the
functions code defines, the checks tests hold, how a solution and its tests become one program for the sandbox, and
the trivial mutant of the test-quality gate.

    lang = code_language("rust")
    solution = lang.first_block(reply)                  # the first ```rust block
    program = lang.program(solution, tests)             # what runs, with {"language": lang.name}
    mutant = lang.mutant(solution)                      # every function body replaced by a panic

Python keeps the ast-based helpers it always had (replies.py, programs.py: its mutant returns None, its tests are
asserts). Every other language is read with its tree-sitter grammar (seed_languages.py). Their tests are a program
that exits non-zero at the first failing check, written with the language's own assert (`assert` in C, C++, Java
and PHP, `assert_eq!` in Rust, node's `assert` module, `if ... { panic(...) }` in Go, `[ ... ] || exit 1` in Bash);
the gate's mutant makes every function throw or panic, so tests that never really call it still pass and are caught.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from assets.generate import replies
from assets.generate.config import PYTHON
from assets.generate.programs import program_with_tests, trivial_mutant
from assets.generate.replies import Rejected
from assets.generate.seed_languages import LANGUAGES as SEED_LANGUAGES
from assets.generate.seed_languages import parse, walk_functions
from sandbox_image.languages import LANGUAGES as SANDBOX_LANGUAGES

_GO_IMPORT = re.compile(r'^import\s*\(\s*\n(?P<block>.*?)^\)\s*$|^import\s+(?P<one>(?:[\w.]+\s+)?"[^"\n]+")\s*$',
                        re.MULTILINE | re.DOTALL)
_GO_PACKAGE = re.compile(r"^package\s+\w+\s*$", re.MULTILINE)
_JAVA_HEADER = re.compile(r"^\s*(?:import\s+[\w.*\s]+;|package\s+[\w.]+;)\s*$", re.MULTILINE)
_PHP_OPEN = re.compile(r"^\s*<\?php\b")
_PHP_CLOSE = re.compile(r"\?>\s*$")


@dataclass(frozen=True)
class CodeLanguage:
    name: str  # the sandbox's and the rows' language name
    label: str  # how prompts and messages name it
    fences: tuple[str, ...]  # fence labels of its code blocks (lower case)
    check: str = r"\bassert\s*\("  # one check in its tests
    check_words: str = "`assert(...)` checks"  # how a format repair names the checks
    throwing_body: str = ""  # a function body that throws or panics (the gate's mutant)
    mutant_prelude: str = ""  # what the throwing body needs, put before the mutant

    @property
    def is_python(self) -> bool:
        return self.name == PYTHON

    @property
    def fence(self) -> str:
        return self.fences[0]

    # -- reading replies -----------------------------------------------------------------------------------------
    def blocks(self, text: str | None) -> list[str]:
        """The non-empty code blocks of `text` fenced with this language (Python also takes unlabelled ones)."""
        return replies.fenced_blocks(text, (*self.fences, "") if self.is_python else self.fences)

    def first_block(self, text: str | None) -> str | None:
        return next(iter(self.blocks(text)), None)

    def parses(self, code: str) -> bool:
        if self.is_python:
            return replies.parses(code)
        return not parse(self._parse_text(code).encode(), self.name).root_node.has_error

    def _parse_text(self, code: str) -> str:
        # PHP outside `<?php` is literal text to tree-sitter; tests are appended to an open PHP file.
        return code if self.name != "php" or _PHP_OPEN.match(code) else "<?php\n" + code

    def functions(self, code: str) -> list[str]:
        """Names of the plain functions `code` defines (Java: static methods), in order."""
        if self.is_python:
            return replies.defined_functions(code)
        root = parse(self._parse_text(code).encode(), self.name).root_node
        return [symbol.rsplit(".", 1)[-1] for symbol, _, _, method in walk_functions(root, self.name) if not method]

    def count_checks(self, tests: str) -> int:
        if self.is_python:
            return replies.count_asserts(tests)
        return len(re.findall(self.check, _without_comments(tests)))

    def calls(self, tests: str, name: str) -> bool:
        return re.search(rf"(?<![\w$]){re.escape(name)}\s*\(" if self.name != "bash" else rf"\b{re.escape(name)}\b",
                         _without_comments(tests)) is not None

    def check_tests(self, solution: str, tests: str, min_checks: int) -> str | Rejected:
        """The function the tests call, or why the tests cannot be used with this solution."""
        if self.is_python:
            return replies.check_tests(solution, tests, min_checks)
        n_checks = self.count_checks(tests)
        if n_checks < min_checks:
            return Rejected("too_few_asserts", f"{n_checks} < {min_checks}")
        entry_point = next((name for name in self.functions(solution) if self.calls(tests, name)), None)
        if entry_point is None:
            return Rejected("tests_do_not_call_solution")
        if entry_point in self.functions(tests):
            return Rejected("tests_redefine_solution", entry_point)
        return entry_point

    def tests_block(self, body: str | None) -> str | None:
        """The first block of `body` with a check in it, else its first block."""
        blocks = self.blocks(body)
        return next((b for b in blocks if self.count_checks(b)), blocks[0] if blocks else None)

    def repair_message(self, reason: str) -> str:
        """What a format repair tells the teacher about `reason`, in this language's words."""
        from assets.generate.questioner import REPAIRABLE

        text = REPAIRABLE[reason]
        if self.is_python:
            return text
        return text.replace("```python", f"```{self.fence}").replace("`assert` statements", self.check_words)

    # -- programs ------------------------------------------------------------------------------------------------
    def program(self, solution: str, tests: str) -> str:
        """The solution and its tests as one program of this language."""
        if self.is_python:
            return program_with_tests(solution, tests)
        if self.name == "go":
            return _go_program(solution, tests)
        if self.name == "java":
            return _java_program(solution, tests)
        if self.name == "php":
            opened = solution if _PHP_OPEN.match(solution) else "<?php\n" + solution
            return _PHP_CLOSE.sub("", opened).rstrip() + "\n\n" + _PHP_OPEN.sub("", tests, count=1).strip() + "\n"
        return solution.rstrip() + "\n\n" + tests.strip() + "\n"

    def mutant(self, solution: str) -> str | None:
        """`solution` with every plain function's body replaced by one that throws or panics; None without one (the
        gate cannot tell good tests from bad ones then). Python: every body becomes `return None`."""
        if self.is_python:
            return trivial_mutant(solution)
        text = self._parse_text(solution)
        data = text.encode()
        root = parse(data, self.name).root_node
        bodies = [function.child_by_field_name("body")
                  for _, function, _, method in walk_functions(root, self.name) if not method]
        bodies = [b for b in bodies if b is not None]
        if not bodies:
            return None
        for body in sorted(bodies, key=lambda b: b.start_byte, reverse=True):
            data = data[:body.start_byte] + self.throwing_body.encode() + data[body.end_byte:]
        mutated = data.decode()
        if self.name == "go":
            mutated = _go_blank_imports(mutated)  # an import the gutted body no longer uses must not break the build
        return self.mutant_prelude + mutated


def _without_comments(code: str) -> str:
    return re.sub(r"//[^\n]*|/\*.*?\*/|^\s*#(?!include|!)[^\n]*", "", code, flags=re.DOTALL | re.MULTILINE)


def _go_imports(code: str) -> tuple[str, list[str]]:
    """(code without its package clause and import declarations, the import specs)."""
    specs: list[str] = []

    def take(match: re.Match) -> str:
        if match.group("block") is not None:
            specs.extend(line.strip() for line in match.group("block").splitlines()
                         if line.strip() and not line.strip().startswith("//"))
        else:
            specs.append(match.group("one").strip())
        return ""

    return _GO_IMPORT.sub(take, _GO_PACKAGE.sub("", code)), specs


def _go_program(solution: str, tests: str) -> str:
    """package main, every import of both once, the solution's declarations, then the tests' (Go wants imports first
    and rejects a package imported twice under one name)."""
    body, imports = _go_imports(solution)
    test_body, test_imports = _go_imports(tests)
    specs = list(dict.fromkeys(imports + test_imports))
    block = "import (\n" + "".join(f"\t{spec}\n" for spec in specs) + ")\n\n" if specs else ""
    return f"package main\n\n{block}{body.strip()}\n\n{test_body.strip()}\n"


def _go_blank_imports(code: str) -> str:
    body, imports = _go_imports(code)
    blank = [f'_ {spec.split()[-1]}' for spec in imports]
    block = "import (\n" + "".join(f"\t{spec}\n" for spec in blank) + ")\n\n" if blank else ""
    return f"package main\n\n{block}{body.strip()}\n"


def _java_program(solution: str, tests: str) -> str:
    """Every import first, then the tests' class (a single-file program runs the first class's main), then the
    solution's."""
    headers: list[str] = []

    def take(match: re.Match) -> str:
        line = match.group(0).strip()
        if line.startswith("import"):
            headers.append(line)
        return ""

    test_body = _JAVA_HEADER.sub(take, tests)
    body = _JAVA_HEADER.sub(take, solution)
    return "\n".join(dict.fromkeys(headers)) + f"\n\n{test_body.strip()}\n\n{body.strip()}\n"


_THROW_JS = ' { throw new Error("mutant"); }'
CODE_LANGUAGES: dict[str, CodeLanguage] = {lang.name: lang for lang in (
    CodeLanguage(PYTHON, "Python", replies.PYTHON_FENCES, check_words="`assert` statements"),
    CodeLanguage("cpp", "C++", ("cpp", "c++", "cc", "cxx"),
                 throwing_body=' { throw std::runtime_error("mutant"); }', mutant_prelude="#include <stdexcept>\n"),
    CodeLanguage("c", "C", ("c",), throwing_body=" { abort(); }", mutant_prelude="#include <stdlib.h>\n"),
    CodeLanguage("javascript", "JavaScript", ("javascript", "js", "node"), check=r"\bassert(?:\.\w+)?\s*\(",
                 check_words="`assert` calls", throwing_body=_THROW_JS),
    CodeLanguage("typescript", "TypeScript", ("typescript", "ts"), check=r"\bassert(?:\.\w+)?\s*\(",
                 check_words="`assert` calls", throwing_body=_THROW_JS),
    CodeLanguage("rust", "Rust", ("rust", "rs"), check=r"\bassert(?:_eq|_ne)?!\s*\(",
                 check_words="`assert_eq!`/`assert!` checks", throwing_body=' { panic!("mutant") }'),
    CodeLanguage("go", "Go", ("go", "golang"), check=r"\bpanic\s*\(",
                 check_words="`if ... { panic(...) }` checks", throwing_body=' { panic("mutant") }'),
    CodeLanguage("java", "Java", ("java",), check=r"\bassert\b", check_words="`assert` statements",
                 throwing_body=' { throw new RuntimeException("mutant"); }'),
    CodeLanguage("php", "PHP", ("php",), throwing_body=' { throw new Exception("mutant"); }'),
    CodeLanguage("bash", "Bash", ("bash", "sh", "shell"), check=r"\|\|\s*exit\b",
                 check_words="`[ ... ] || exit 1` checks", throwing_body=" { exit 1; }"),
)}
assert set(CODE_LANGUAGES) <= set(SANDBOX_LANGUAGES) and set(CODE_LANGUAGES) - {PYTHON} <= set(SEED_LANGUAGES)


def code_language(name: str) -> CodeLanguage:
    """The language called `name`; a ValueError naming the choices otherwise."""
    try:
        return CODE_LANGUAGES[name]
    except KeyError:
        raise ValueError(f"unknown language {name!r}: choose one of {', '.join(CODE_LANGUAGES)}") from None
