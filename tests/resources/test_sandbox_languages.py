"""Programs in other languages than Python, in the real bwrap sandbox: each language passes and fails the way its
own toolchain says, a compile error is `failed` with the compiler's output, the compile step counts against the
wall clock, builds are reused by content hash (and a program cannot change what a later run of it gets), and a
language that is unknown or whose toolchain is missing is a one-line error that leaves the other programs alone."""

import json

import pytest

from resources.sandbox import Limits, SandboxPool
from resources.verdict_cache import verdict_key
from sandbox_image import runner
from sandbox_image.languages import LANGUAGES, Language
from tests.test_cli import run_cli

pytestmark = pytest.mark.slow

# language -> (a program whose check holds, the same check failing); each prints "ok" when it holds.
PROGRAMS = {
    "bash": ('[ "$(( 6 * 7 ))" -eq 42 ] && echo ok\n', '[ "$(( 6 * 7 ))" -eq 41 ] && echo ok\n'),
    "javascript": ("const assert = require('assert');\nassert.deepStrictEqual([1, 2].map(x => x * 2), [2, 4]);\n"
                   "console.log('ok');\n",
                   "const assert = require('assert');\nassert.deepStrictEqual([1, 2].map(x => x * 2), [2, 5]);\n"),
    "typescript": ("declare var require: any;\nconst assert = require('assert');\n"
                   "function twice(x: number): number { return 2 * x; }\nassert.strictEqual(twice(21), 42);\n"
                   "console.log('ok');\n",
                   "declare var require: any;\nconst assert = require('assert');\n"
                   "function twice(x: number): number { return 2 * x; }\nassert.strictEqual(twice(20), 42);\n"),
    "cpp": ("#include <cassert>\n#include <iostream>\n#include <vector>\nint main() {\n"
            "  std::vector<int> v{1, 2, 3};\n  assert(v.size() == 3);\n  std::cout << \"ok\" << std::endl;\n}\n",
            "#include <cassert>\n#include <vector>\nint main() {\n  std::vector<int> v{1, 2, 3};\n"
            "  assert(v.size() == 4);\n}\n"),
    "c": ("#include <assert.h>\n#include <math.h>\n#include <stdio.h>\n"
          "int main(void) { assert(sqrt(16.0) == 4.0); puts(\"ok\"); return 0; }\n",
          "#include <assert.h>\nint main(void) { assert(1 + 1 == 3); return 0; }\n"),
    "rust": ("fn twice(x: i32) -> i32 { x * 2 }\nfn main() { assert_eq!(twice(21), 42); println!(\"ok\"); }\n",
             "fn twice(x: i32) -> i32 { x * 2 }\nfn main() { assert_eq!(twice(20), 42); }\n"),
    "go": ("package main\n\nimport \"fmt\"\n\nfunc main() {\n\tif 6*7 != 42 {\n\t\tpanic(\"wrong\")\n\t}\n"
           "\tfmt.Println(\"ok\")\n}\n",
           "package main\n\nfunc main() {\n\tif 6*7 != 41 {\n\t\tpanic(\"wrong\")\n\t}\n}\n"),
    "java": ("class Problem {\n  static int twice(int x) { return 2 * x; }\n"
             "  public static void main(String[] args) {\n    assert twice(21) == 42;\n"
             "    System.out.println(\"ok\");\n  }\n}\n",
             "class Problem {\n  static int twice(int x) { return 2 * x; }\n"
             "  public static void main(String[] args) {\n    assert twice(20) == 42;\n  }\n}\n"),
    "php": ("<?php\nfunction twice($x) { return 2 * $x; }\nassert(twice(21) === 42);\n"
            "if (twice(21) !== 42) { exit(1); }\necho \"ok\\n\";\n",
            "<?php\nfunction twice($x) { return 2 * $x; }\nif (twice(20) !== 42) { throw new Exception('no'); }\n"),
}
COMPILE_ERRORS = {
    "cpp": ("int main() { return undefined_name; }\n", "undefined_name"),
    "c": ("int main(void) { return undefined_name; }\n", "undefined_name"),
    "rust": ("fn main() { let x: i32 = \"text\"; }\n", "mismatched types"),
    "go": ("package main\n\nfunc main() { x := 1 }\n", "declared but not used"),
    "typescript": ("const n: number = 'text';\n", "not assignable"),
    "java": ("class Main { public static void main(String[] a) { int x = \"text\"; } }\n", "incompatible types"),
}


@pytest.fixture(scope="module")
def pool():
    from tests.conftest import require_bwrap

    require_bwrap()
    with SandboxPool("bwrap", workers=2, limits=Limits(timeout_s=30, memory_mb=512)) as p:
        yield p


def test_every_language_passes_and_fails_as_its_toolchain_says(pool):
    programs = [{"id": f"{lang}-{kind}", "code": code, "language": lang}
                for lang, pair in PROGRAMS.items() for kind, code in zip(("good", "bad"), pair)]
    verdicts = {v.id: v for v in pool.run_batch(programs)}
    for lang in PROGRAMS:
        good, bad = verdicts[f"{lang}-good"], verdicts[f"{lang}-bad"]
        assert (good.status, good.stdout, good.language) == ("passed", "ok\n", lang), (lang, good.stderr)
        assert bad.status == "failed" and bad.exit_code != 0, (lang, bad.status, bad.stderr)
        compiled = bool(LANGUAGES[lang].compile)
        assert (good.compile_ms is not None) == compiled
        if compiled:
            assert 0 < good.compile_ms <= good.wall_ms


@pytest.mark.parametrize("language", sorted(COMPILE_ERRORS))
def test_a_compile_error_is_failed_with_the_compilers_output(pool, language):
    code, words = COMPILE_ERRORS[language]
    verdict = pool.run_one({"id": "broken", "code": code, "language": language})
    assert verdict.status == "failed"
    assert words in verdict.stderr
    assert verdict.stdout == ""


def test_a_failed_builds_feedback_shows_the_first_errors(pool):
    from assets.generate.programs import execution_feedback

    # Many errors: the first is what a model must fix, the last lines are notes.
    code = "#include <vector>\n" + "".join(f"int f{i}() {{ return undefined_{i}; }}\n" for i in range(40))
    verdict = pool.run_one({"id": "many", "code": code, "language": "cpp"})
    assert (verdict.status, verdict.phase) == ("failed", "compile")
    shown = execution_feedback(verdict)
    assert shown.startswith("Compilation failed.\n") and "undefined_0" in shown and "undefined_39" not in shown
    ran = pool.run_one({"id": "ran", "code": PROGRAMS["cpp"][1], "language": "cpp"})
    assert ran.phase == "run" and execution_feedback(ran).startswith("Exit status")


def test_java_programs_have_javatuples(pool):
    # MultiPL-E's Java problems that return pairs import org.javatuples.
    code = ("import org.javatuples.*;\nclass Problem {\n"
            "  static Pair<Long, String> f() { return Pair.with(1L, \"a\"); }\n"
            "  public static void main(String[] args) {\n    assert f().equals(Pair.with(1L, \"a\"));\n"
            "    System.out.println(f().getValue1());\n  }\n}\n")
    verdict = pool.run_one({"id": "pair", "code": code, "language": "java"})
    assert (verdict.status, verdict.stdout) == ("passed", "a\n"), verdict.stderr


def test_the_compile_step_counts_against_the_wall_clock(pool):
    # A source of its own: one built before would come from the worker's build cache, with no compile step to time.
    code = "// built once: wall clock\n" + PROGRAMS["rust"][0]
    verdict = pool.run_one({"id": "slow-build", "code": code, "language": "rust", "timeout_s": 0.05})
    assert verdict.status == "timeout"


def test_builds_are_reused_and_a_program_cannot_change_its_cached_build(pool):
    # The program replaces its own binary; the next run of the same source must still get the compiler's output.
    code = ("#include <cstdio>\n#include <fstream>\nint main() {\n  std::puts(\"original\");\n"
            "  std::ofstream(\"main\", std::ios::trunc) << \"#!/bin/sh\\necho tampered\\n\";\n}\n")
    with SandboxPool("bwrap", workers=1, limits=Limits(timeout_s=30)) as single:
        first = single.run_one({"id": "a", "code": code, "language": "cpp"})
        second = single.run_one({"id": "b", "code": code, "language": "cpp"})
    assert (first.status, first.stdout) == ("passed", "original\n"), first.stderr
    assert (second.status, second.stdout) == ("passed", "original\n"), second.stderr
    assert first.compile_ms > 0 and second.compile_ms == 0.0


def test_unknown_languages_are_one_line_errors_and_the_rest_still_run(pool):
    verdicts = pool.run_batch([{"id": "cobol", "code": "DISPLAY 'HI'.", "language": "cobol"},
                               {"id": "number", "code": "x", "language": 3},
                               {"id": "sh", "code": "echo fine", "language": "bash"}])
    assert [v.status for v in verdicts] == ["error", "error", "passed"]
    assert verdicts[0].stderr.startswith("unknown language 'cobol': choose one of python, ")
    assert "\n" not in verdicts[0].stderr
    assert verdicts[1].stderr == "language must be a string, got 3"


def test_a_missing_toolchain_names_its_package(monkeypatch):
    go = LANGUAGES["go"]
    missing = Language(go.name, go.source, go.run, "/nonexistent/bin/go", go.package, compile=go.compile)
    monkeypatch.setitem(runner.LANGUAGES, "go", missing)
    # Checked before anything forks, so the server function can answer it here, outside a sandbox.
    reply = runner.run_task({"id": "g", "code": "package main\nfunc main() {}\n", "language": "go"})
    assert reply["status"] == "error"
    assert reply["stderr"] == ("language 'go' needs /nonexistent/bin/go, which is not installed: install the Debian "
                               "package golang-go (as root: apt-get install -y golang-go, or run `make toolchains`)")


def test_verdict_cache_keys_depend_on_the_language():
    args = ("echo hi", "bwrap", {}, "v")
    assert verdict_key(*args) == verdict_key(*args, language="python")
    assert verdict_key(*args, language="bash") != verdict_key(*args, language="php")


def test_the_cli_runs_a_go_program(tmp_path):
    path = tmp_path / "programs.jsonl"
    rows = [{"id": "go", "language": "go", "code": PROGRAMS["go"][0]},
            {"id": "py", "code": "print('ok')"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = run_cli("sandbox", "run", "--input", str(path), "--timeout", "30")
    assert result.returncode == 0, result.stderr
    out = {r["id"]: r for r in map(json.loads, result.stdout.splitlines())}
    assert out["go"]["status"] == "passed" and out["go"]["stdout"] == "ok\n" and out["go"]["language"] == "go"
    assert out["py"]["status"] == "passed" and out["py"]["compile_ms"] is None
