"""code_languages.py without a sandbox: reading blocks, counting checks, checking tests, assembling programs and
making the gate's mutant in each language (the programs' real runs are in methods/test_oss_instruct_languages.py)."""

import pytest

from assets.generate.code_languages import CODE_LANGUAGES, code_language
from assets.generate.replies import Rejected


def test_blocks_take_only_the_languages_fences():
    text = "```python\nx = 1\n```\n```rust\nfn a() {}\n```\n```rs\nfn b() {}\n```\n```\nplain\n```"
    assert code_language("rust").blocks(text) == ["fn a() {}", "fn b() {}"]
    assert code_language("python").blocks(text) == ["x = 1", "plain"]  # Python also takes unlabelled blocks
    assert code_language("cpp").blocks(text) == []


@pytest.mark.parametrize("language, good, broken", [
    ("cpp", "int f(int x) { return x; }", "int f(int x) { return x; "),
    ("rust", "fn f(x: i32) -> i32 { x }", "fn f(x: i32) -> i32 { x "),
    ("go", "package main\n\nfunc f(x int) int { return x }", "package main\n\nfunc f(x int int { return x }"),
    ("java", "class Solution { static int f(int x) { return x; } }", "class Solution { static int f(int x) {"),
    ("php", "<?php\nfunction f($x) { return $x; }", "<?php\nfunction f($x) { return $x; "),
])
def test_parses_and_functions(language, good, broken):
    lang = code_language(language)
    assert lang.parses(good) and not lang.parses(broken)
    assert lang.functions(good) == ["f"]


def test_checks_are_counted_in_code_not_in_comments():
    rust = code_language("rust")
    tests = "fn main() {\n    // assert_eq!(f(0), 0);\n    assert_eq!(f(1), 1);\n    assert!(f(2) == 2);\n}"
    assert rust.count_checks(tests) == 2
    assert code_language("go").count_checks('if f(1) != 1 {\n\tpanic("f")\n}') == 1
    assert code_language("bash").count_checks('[ "$(f 1)" = 1 ] || exit 1\n# [ x ] || exit 1') == 1


def test_check_tests_names_what_is_wrong():
    cpp = code_language("cpp")
    solution = "int triple(int x) { return 3 * x; }"
    assert cpp.check_tests(solution, "int main() { assert(triple(1) == 3); assert(triple(0) == 0); }", 2) == "triple"
    assert cpp.check_tests(solution, "int main() { assert(triple(1) == 3); }", 2) == Rejected("too_few_asserts",
                                                                                              "1 < 2")
    assert cpp.check_tests(solution, "int main() { assert(1 == 1); assert(2 == 2); }", 2).reason == \
        "tests_do_not_call_solution"
    redefined = "int triple(int x) { return x; }\nint main() { assert(triple(1) == 1); assert(triple(2) == 2); }"
    assert cpp.check_tests(solution, redefined, 2).reason == "tests_redefine_solution"


def test_go_programs_have_one_package_clause_and_every_import_once():
    go = code_language("go")
    solution = 'package main\n\nimport (\n\t"fmt"\n\t"strings"\n)\n\nfunc f(s string) string {\n' \
               '\treturn fmt.Sprint(strings.ToUpper(s))\n}'
    tests = 'import "fmt"\nimport "reflect"\n\nfunc main() {\n\tif !reflect.DeepEqual(f("a"), "A") {\n' \
            '\t\tpanic(fmt.Sprint("f"))\n\t}\n}'
    program = go.program(solution, tests)
    assert program.count("package main") == 1
    assert program.startswith('package main\n\nimport (\n\t"fmt"\n\t"strings"\n\t"reflect"\n)\n')
    assert go.parses(program)
    # The mutant no longer uses fmt or strings: they become blank imports, so it still builds.
    mutant = go.mutant(solution)
    assert '_ "fmt"' in mutant and '_ "strings"' in mutant and 'panic("mutant")' in mutant


def test_java_programs_put_imports_first_and_the_tests_class_before_the_solution():
    java = code_language("java")
    solution = "import java.util.*;\n\nclass Solution {\n    static List<Integer> f() { return List.of(1); }\n}"
    tests = "import java.util.List;\nclass Main {\n    public static void main(String[] a) {\n" \
            "        assert Solution.f().equals(List.of(1));\n    }\n}"
    program = java.program(solution, tests)
    assert program.startswith("import java.util.List;\nimport java.util.*;\n\nclass Main")
    assert program.index("class Main") < program.index("class Solution")
    assert java.check_tests(solution, tests, 1) == "f"


def test_php_programs_open_php_once():
    php = code_language("php")
    program = php.program("<?php\nfunction f($x) { return $x; }\n?>", "<?php\nassert(f(1) === 1);")
    assert program.count("<?php") == 1 and "?>" not in program and program.endswith("assert(f(1) === 1);\n")
    assert php.check_tests("<?php\nfunction f($x) { return $x; }", "assert(f(1) === 1);", 1) == "f"


@pytest.mark.parametrize("language", sorted(set(CODE_LANGUAGES) - {"python"}))
def test_every_language_has_a_mutant_that_replaces_each_function_body(language):
    sources = {
        "cpp": "int f(int x) { return x; }\nint g() { return 2; }",
        "c": "int f(int x) { return x; }\nint g(void) { return 2; }",
        "javascript": "function f(x) { return x; }\nconst g = () => 2;",
        "typescript": "function f(x: number): number { return x; }\nfunction g(): number { return 2; }",
        "rust": "fn f(x: i32) -> i32 { x }\nfn g() -> i32 { 2 }",
        "go": "package main\n\nfunc f(x int) int { return x }\n\nfunc g() int { return 2 }",
        "java": "class Solution {\n  static int f(int x) { return x; }\n  static int g() { return 2; }\n}",
        "php": "<?php\nfunction f($x) { return $x; }\nfunction g() { return 2; }",
        "bash": "f() { echo \"$1\"; }\ng() { echo 2; }",
    }
    lang = code_language(language)
    mutant = lang.mutant(sources[language])
    assert mutant.count(lang.throwing_body.strip()) == 2, mutant
    assert lang.parses(mutant)
    assert lang.mutant("// nothing here\n" if language != "bash" else "# nothing\n") is None


def test_repair_messages_use_the_languages_words():
    assert code_language("rust").repair_message("no_tests_code") == \
        "there is no ### Tests section with a ```rust block"
    assert "`assert_eq!`/`assert!` checks" in code_language("rust").repair_message("too_few_asserts")
    assert code_language("python").repair_message("too_few_asserts") == \
        "the tests have fewer than the required `assert` statements"


def test_unknown_languages_are_named():
    with pytest.raises(ValueError, match="unknown language 'cobol': choose one of python, cpp"):
        code_language("cobol")
