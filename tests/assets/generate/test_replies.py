"""Reply parsing, prompt templates and the sandbox-side helpers of the generation stages."""

from __future__ import annotations

import pytest

from assets.generate.programs import (
    execution_feedback,
    expected_from_outputs,
    outputs_program,
    program_with_tests,
    trivial_mutant,
)
from assets.generate.replies import ParsedProblem, Rejected, extract_code, parse_problem_reply
from assets.prompts import PromptError, load_prompt
from resources.sandbox import Verdict

SOLUTION = "def area(w, h):\n    return w * h"
TESTS = "assert area(2, 3) == 6\nassert area(0, 5) == 0\nassert area(1, 1) == 1"


def reply(problem="Write `area(w, h)` returning the area.", solution=SOLUTION, tests=TESTS, style="###"):
    parts = {"###": ("### Problem", "### Solution", "### Tests"),
             "bold": ("**Problem**", "**Solution:**", "**Tests**"),
             "colon": ("Problem:", "Solution:", "Tests:")}[style]
    text = f"{parts[0]}\n{problem}\n\n{parts[1]}\n```python\n{solution}\n```\n"
    if tests is not None:
        text += f"\n{parts[2]}\n```python\n{tests}\n```\n"
    return text


@pytest.mark.parametrize("style", ["###", "bold", "colon"])
def test_parses_heading_styles(style):
    parsed = parse_problem_reply(reply(style=style))
    assert isinstance(parsed, ParsedProblem)
    assert parsed.entry_point == "area" and parsed.n_asserts == 3
    assert parsed.instruction == "Write `area(w, h)` returning the area."
    assert parsed.solution == SOLUTION and parsed.tests == TESTS


def test_parses_without_headings():
    text = f"Write `area(w, h)`.\n```python\n{SOLUTION}\n```\nChecks:\n```python\n{TESTS}\n```"
    parsed = parse_problem_reply(text)
    assert isinstance(parsed, ParsedProblem) and parsed.instruction == "Write `area(w, h)`."


def test_unterminated_fence_still_parses():
    text = reply()[:-5]  # cut inside the closing fence, as at max_tokens
    assert isinstance(parse_problem_reply(text), ParsedProblem)


@pytest.mark.parametrize("text, reason", [
    ("", "empty_reply"),
    ("   \n", "empty_reply"),
    (reply(tests=None), "no_tests_code"),
    (reply(solution="def area(w, h:\n    return"), "solution_syntax_error"),
    (reply(tests="assert area(2, 3) == 6\nassert area(("), "tests_syntax_error"),
    (reply(tests="assert area(2, 3) == 6"), "too_few_asserts"),
    (reply(tests="assert 1 == 1\nassert 2 == 2\nassert 3 == 3"), "tests_do_not_call_solution"),
    (reply(tests=SOLUTION + "\n" + TESTS), "tests_redefine_solution"),
    (reply(problem=""), "no_problem_section"),
    ("Just some prose without any code at all.", "no_problem_section"),
])
def test_malformed_replies_become_reasons(text, reason):
    parsed = parse_problem_reply(text)
    assert isinstance(parsed, Rejected) and parsed.reason == reason


def test_extract_code_prefers_the_block_defining_the_entry_point():
    answer = (f"First:\n```python\n{SOLUTION}\n```\nUsage:\n```python\nprint(area(2, 3))\n```\n"
              "Improved:\n```python\ndef area(w, h):\n    return abs(w * h)\n```")
    assert extract_code(answer, "area") == "def area(w, h):\n    return abs(w * h)"
    assert extract_code("no code here", "area") is None
    assert extract_code("```python\ndef broken(:\n```", "area") is None
    assert extract_code(f"```\n{SOLUTION}\n```", None) == SOLUTION


def test_trivial_mutant_returns_none_everywhere(bwrap_pool):
    code = ('import math\n\nclass C:\n    def m(self):\n        """Doc."""\n        return 1\n\n'
            'def f(x):\n    return x\n')
    mutant = trivial_mutant(code)
    checks = "assert f(3) is None\nassert C().m() is None\nassert C.m.__doc__ == 'Doc.'"
    original, mutated = bwrap_pool.run_batch([{"id": "o", "code": program_with_tests(code, checks)},
                                              {"id": "m", "code": program_with_tests(mutant, checks)}])
    assert original.status == "failed" and mutated.status == "passed", mutated.stderr
    assert trivial_mutant("x = 1") is None and trivial_mutant("def (") is None


def test_execution_feedback_keeps_the_end_of_a_long_traceback():
    stderr = "\n".join(f"frame {i}" for i in range(200)) + "\nAssertionError: boom"
    verdict = Verdict("a", "failed", 1, "", stderr, 5.0, "bwrap", {"timeout_s": 10})
    text = execution_feedback(verdict)
    assert text.startswith("Exit status 1.") and text.endswith("AssertionError: boom") and len(text) < 2000
    timeout = Verdict("a", "timeout", None, "", "", 10_000.0, "bwrap", {"timeout_s": 10})
    assert "Timed out after 10 s" in execution_feedback(timeout)
    assert program_with_tests("def f():\n    pass\n", "assert f() is None").endswith("assert f() is None\n")


def test_prompts_render_and_are_versioned():
    prompt = load_prompt("oss_instruct")
    assert prompt.version.startswith("oss_instruct.v1@") and prompt.variables == {"seed"}
    messages = prompt.render(seed="def f(x):\n    return {x: '\\n'}")
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[-1]["content"].endswith("def f(x):\n    return {x: '\\n'}\n```")
    assert "### Tests" in messages[2]["content"]  # the worked example
    with pytest.raises(PromptError, match="missing variables"):
        prompt.render()
    with pytest.raises(PromptError, match="does not exist"):
        load_prompt("oss_instruct", 99)
    for name in ("problem_repair", "programmer", "feedback_execution", "feedback_human_sim"):
        assert load_prompt(name).turns


def test_worked_example_is_a_valid_reply_that_passes(bwrap_pool):
    """The example the prompt shows must parse and pass its own tests (a broken example teaches a broken format)."""
    example = parse_problem_reply(load_prompt("oss_instruct").turns[2][1])
    assert isinstance(example, ParsedProblem) and example.entry_point == "split_evenly" and example.n_asserts >= 4
    verdict = bwrap_pool.run_one({"id": "example", "code": program_with_tests(example.solution, example.tests)})
    assert verdict.status == "passed", verdict.stderr
    mutant = bwrap_pool.run_one({"id": "mutant", "code": program_with_tests(trivial_mutant(example.solution),
                                                                            example.tests)})
    assert mutant.status == "failed"


def test_failing_asserts_say_what_the_call_returned(bwrap_pool):
    tests = "assert add(1, 2) == 3\nassert add(2, 2) == 5\nassert add(0, 0) is not None"
    verdict = bwrap_pool.run_one({"id": "x", "code": program_with_tests("def add(a, b):\n    return a + b", tests)})
    assert verdict.status == "failed"
    assert "AssertionError: assert add(2, 2) == 5\n  got: 4" in verdict.stderr
    assert "got: 4" in execution_feedback(verdict)


def test_reference_outputs_replace_expected_values(bwrap_pool):
    solution = "def add(a, b):\n    print('noise')\n    return a + b\n"
    tests = "base = 2\nassert add(base, 2) == 5\nassert add(0, 0) == 0\nassert add(1, 1) is not None"
    verdict = bwrap_pool.run_one({"id": "o", "code": outputs_program(solution, tests)})
    assert verdict.status == "passed", verdict.stderr
    fixed = expected_from_outputs(tests, verdict.stdout)
    assert fixed == "base = 2\nassert add(base, 2) == 4\nassert add(0, 0) == 0\nassert add(1, 1) is not None"
    # An output that is not a literal cannot become an expected value.
    objects = bwrap_pool.run_one({"id": "x", "code": outputs_program("def add(a, b):\n    return object()", tests)})
    assert expected_from_outputs(tests, objects.stdout) is None
    assert outputs_program(solution, "assert add(1, 1) > 0") is None


@pytest.mark.parametrize("language, code, message", [
    ("javascript", "const assert = require('assert');\nfunction f() { return [1]; }\n"
                   "assert.deepStrictEqual(f(), [2]);\n", "AssertionError [ERR_ASSERTION]"),
    ("java", "public class Main {\n  public static void main(String[] a) {\n"
             "    java.util.Objects.requireNonNull(null, \"the value\");\n  }\n}\n", "NullPointerException: the value"),
])
def test_feedback_drops_the_runtimes_own_stack_frames(bwrap_pool, language, code, message):
    """Node's loader and the JDK's frames are noise: the error message and the program's own frame stay in view."""
    verdict = bwrap_pool.run_one({"id": language, "code": code, "language": language})
    assert verdict.status == "failed" and ("node:internal" in verdict.stderr or "java.base/" in verdict.stderr)
    text = execution_feedback(verdict)
    assert message in text and ("main.js:3" in text or "Main.java:3" in text), text
    assert "node:internal" not in text and "java.base/" not in text, text
