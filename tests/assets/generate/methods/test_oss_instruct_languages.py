"""oss_instruct in every language beyond Python, with a scripted teacher and the real sandbox: a window of that
language's code becomes a problem whose solution and tests are that language's, compiled and run as one program; a
failing first solution is repaired from what the compiler or the failing check printed; tests that never really call
the function are caught by the gate's throwing mutant; rows carry the language and fence it.

The responder reads the scenario from the window (`// <scenario>`), keeps it in the function's name
(`triple_<scenario>_<tag>`), and writes:
    good    right solution, right tests                      -> kept at the first run
    repair  the first solution doubles; the repair triples   -> kept after one repair
    weak    checks that never run the function              -> tests_pass_trivial_solution
"""

from __future__ import annotations

import hashlib
import re

import pytest

from assets.generate.code_languages import CODE_LANGUAGES
from assets.generate.methods.base import MethodInputs
from assets.generate.methods.config import OssInstructConfig
from assets.generate.methods.oss_instruct import run
from assets.generate.seed_extract import seed_id
from assets.schemas import DIALOGUE_REJECTS, DIALOGUES, frame

pytestmark = pytest.mark.slow

# language -> (solution of NAME returning FACTOR * x, tests of NAME tripling, weak tests that never run NAME)
CODE = {
    "cpp": ("int NAME(int x) {\n    return FACTOR * x;\n}",
            "#include <cassert>\nint main() {\nCHECKS    return 0;\n}", "    assert(NAME(X) == Y);\n",
            "#include <cassert>\nint main() {\n    if (false) { NAME(1); }\nCHECKS}", "    assert(X == X);\n"),
    "c": ("int NAME(int x) {\n    return FACTOR * x;\n}",
          "#include <assert.h>\nint main(void) {\nCHECKS    return 0;\n}", "    assert(NAME(X) == Y);\n",
          "#include <assert.h>\nint main(void) {\n    if (0) { NAME(1); }\nCHECKS    return 0;\n}",
          "    assert(X == X);\n"),
    "rust": ("fn NAME(x: i32) -> i32 {\n    FACTOR * x\n}", "fn main() {\nCHECKS}", "    assert_eq!(NAME(X), Y);\n",
             "fn main() {\n    if false { NAME(1); }\nCHECKS}", "    assert_eq!(X, X);\n"),
    "go": ("package main\n\nfunc NAME(x int) int {\n\treturn FACTOR * x\n}",
           "func main() {\nCHECKS}", "\tif NAME(X) != Y {\n\t\tpanic(\"wrong\")\n\t}\n",
           "func main() {\n\tif false {\n\t\tNAME(1)\n\t}\nCHECKS}", "\tif X != X {\n\t\tpanic(\"never\")\n\t}\n"),
    "java": ("class Solution {\n    static int NAME(int x) {\n        return FACTOR * x;\n    }\n}",
             "class Main {\n    public static void main(String[] args) {\nCHECKS    }\n}",
             "        assert Solution.NAME(X) == Y;\n",
             "class Main {\n    public static void main(String[] args) {\n        if (false) { Solution.NAME(1); }\n"
             "CHECKS    }\n}", "        assert X == X;\n"),
    "javascript": ("function NAME(x) {\n  return FACTOR * x;\n}",
                   "const assert = require('assert');\nCHECKS", "assert.strictEqual(NAME(X), Y);\n",
                   "const assert = require('assert');\nif (false) { NAME(1); }\nCHECKS", "assert.strictEqual(X, X);\n"),
    "typescript": ("function NAME(x: number): number {\n  return FACTOR * x;\n}",
                   "declare var require: any;\nconst assert = require('assert');\nCHECKS",
                   "assert.strictEqual(NAME(X), Y);\n",
                   "declare var require: any;\nconst assert = require('assert');\nif (false) { NAME(1); }\nCHECKS",
                   "assert.strictEqual(X, X);\n"),
    "php": ("<?php\nfunction NAME($x) {\n    return FACTOR * $x;\n}", "CHECKS", "assert(NAME(X) === Y);\n",
            "if (false) { NAME(1); }\nCHECKS", "assert(X === X);\n"),
    "bash": ("NAME() {\n    echo $(( FACTOR * $1 ))\n}", "CHECKS", "[ \"$(NAME X)\" = \"Y\" ] || exit 1\n",
             "if false; then NAME 1; fi\nCHECKS", "[ X = X ] || exit 1\n"),
}
assert set(CODE) == set(CODE_LANGUAGES) - {"python"}


def solution(language: str, name: str, factor: int) -> str:
    return CODE[language][0].replace("NAME", name).replace("FACTOR", str(factor))


def checks_program(language: str, name: str, weak: bool = False) -> str:
    _, program, check, weak_program, weak_check = CODE[language]
    template, line = (weak_program, weak_check) if weak else (program, check)
    checks = "".join(line.replace("NAME", name).replace("X", str(x)).replace("Y", str(3 * x)) for x in (1, 0, 4, 7))
    return template.replace("CHECKS", checks).replace("NAME", name)


class Responder:
    def __init__(self, language: str) -> None:
        self.language, self.fence = language, CODE_LANGUAGES[language].fence
        self.kinds: list[str] = []
        self.shown: list[str] = []  # what each repair request showed

    def block(self, title: str, code: str) -> str:
        return f"### {title}\n```{self.fence}\n{code}\n```\n"

    def __call__(self, messages: list[dict]) -> str:
        system, last = messages[0]["content"], messages[-1]["content"]
        if system.startswith("You are an expert"):  # the programmer of the difficulty labels: answers right
            self.kinds.append("answer")
            name = re.search(r"`(triple_\w+)\(", last).group(1)
            return "Three times x.\n\n" + self.block("Solution", solution(self.language, name, 3))
        if system.startswith("You invent"):
            self.kinds.append("problem")
            window = re.findall(r"Code lines:\n```\w+\n(.*?)\n```", last, re.S)[-1]
            found = re.search(r"(good|repair|weak)", window)
            scenario = found.group(1) if found else "good"  # a window of real code
            name = f"triple_{scenario}_{hashlib.sha256(window.encode()).hexdigest()[:6]}"
            problem = f"### Problem\nWrite a function `{name}(x)` that returns three times `x`.\n\n"
            return problem + self.block("Solution", solution(self.language, name, 2 if scenario == "repair" else 3))
        assert system.startswith("You write unit tests"), system[:80]
        exercise = [m["content"] for m in messages if m["role"] == "user" and m["content"].startswith("Exercise:")][-1]
        name = re.search(r"`(triple_\w+)\(", exercise).group(1)
        if last.startswith("Execution result:"):
            self.kinds.append("repair")
            self.shown.append(last)
            return self.block("Solution", solution(self.language, name, 3)) + "\n" + self.block(
                "Tests", checks_program(self.language, name))
        self.kinds.append("tests")
        return self.block("Tests", checks_program(self.language, name, weak="_weak_" in name))


def window_seed(language: str, scenario: str) -> dict:
    code = f"// {scenario}\nfor (auto& item : items) {{\n    total += item.weight * item.value;  // {language}\n}}"
    return {"seed_id": seed_id(code), "source": "tree", "path": f"src/{scenario}.{language}", "license": "MIT",
            "language": language, "kind": "window", "symbol": "L1-4", "code": code, "n_lines": 4}


@pytest.mark.parametrize("language", sorted(CODE))
def test_oss_instruct_writes_verified_rows_in_the_language(method_context, language):
    responder = Responder(language)
    seeds = [window_seed(language, s) for s in ("good", "repair", "weak")]
    python_seed = {**window_seed(language, "good"), "language": "python", "seed_id": "py", "code": "x = 1  # good"}
    with method_context(responder, source="tree") as (ctx, _):
        result = run(MethodInputs(seeds=seeds + [python_seed]), OssInstructConfig(language=language), ctx)
    frame(result.rows, DIALOGUES)
    frame(result.rejects, DIALOGUE_REJECTS)
    # Only the language's seeds give windows.
    assert result.extra["seeds_of_other_languages"] == 1 and result.extra["windows"] == 3
    assert sorted(responder.kinds) == sorted(["problem"] * 3 + ["tests"] * 3 + ["repair"])
    assert dict(result.counts) == {"tests_pass_trivial_solution": 1}, [r["detail"] for r in result.rejects]
    rows = {re.search(r"triple_(\w+?)_", r["solution"]).group(1): r for r in result.rows}
    assert set(rows) == {"good", "repair"}
    for row in rows.values():
        assert row["language"] == language
        assert row["messages"][1]["content"].startswith(f"```{CODE_LANGUAGES[language].fence}\n")
        # first run (or repair) passed, then the gate: the throwing mutant fails the tests, the rerun passes
        assert [v["status"] for v in row["verdicts"]][-2:] == ["failed", "passed"]
        assert "return 3" in row["solution"] or "3 * " in row["solution"] or "3 *" in row["solution"]
    assert [v["status"] for v in rows["repair"]["verdicts"]] == ["failed", "passed", "failed", "passed"]
    # The repair was shown what the sandbox printed for the failing check (a language's own words for it).
    assert responder.shown and "Exit status" in responder.shown[0]
    # The prompts are the language's own.
    assert rows["good"]["prompt_version"].startswith(f"oss_window_{language}.v1@")
