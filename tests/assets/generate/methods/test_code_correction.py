"""code_correction end to end: hand-made verified parents, a scripted programmer (and bug writer), the real sandbox.

Each parent's function name picks what the scripted model does with it:
    fixed_*     the first fix is the parent's solution                     -> kept at turn 1
    unchanged_* the "fix" repeats the buggy code                           -> fix_unchanged
    retry_*     a wrong fix first, the right one after the execution output -> kept at turn 2
    nocode_*    an answer without code                                     -> no_code_in_fix
    weak_*      tests that catch no mutation                               -> no_caught_mutation (or a teacher's bug)
    spin_*      every mutant loops forever                                 -> no_caught_mutation
"""

from __future__ import annotations

import re

import pytest

from assets.generate.config import EXECUTION_PREFIX
from assets.generate.methods import base
from assets.generate.methods.base import MethodInputs
from assets.generate.methods.code_correction import RETRY_REQUEST, run
from assets.generate.methods.config import CodeCorrectionConfig
from assets.generate.methods.mutations import candidates
from assets.schemas import DIALOGUE_REJECTS, DIALOGUES, frame

SOLUTIONS = {
    "fixed_discount": "def fixed_discount(price, percent):\n    return price - price * percent // 100\n",
    "unchanged_span": "def unchanged_span(a, b):\n    return b - a + 1\n",
    "retry_mean": "def retry_mean(a, b):\n    return (a + b) // 2\n",
    "nocode_triple": "def nocode_triple(x):\n    return 3 * x\n",
    "weak_double": "def weak_double(x):\n    return x * 2\n",
    "spin_drain": "def spin_drain(n):\n    while n:\n        n -= 1\n    return n\n",
}
TESTS = {
    "fixed_discount": "assert fixed_discount(200, 10) == 180\nassert fixed_discount(50, 0) == 50\n"
                      "assert fixed_discount(99, 100) == 0\n",
    "unchanged_span": "assert unchanged_span(1, 5) == 5\nassert unchanged_span(3, 3) == 1\n"
                      "assert unchanged_span(0, 9) == 10\n",
    "retry_mean": "assert retry_mean(2, 4) == 3\nassert retry_mean(1, 2) == 1\nassert retry_mean(-3, 3) == 0\n",
    "nocode_triple": "assert nocode_triple(2) == 6\nassert nocode_triple(0) == 0\n",
    # Any change to the constant still gives 0 for 0: no mutant is caught.
    "weak_double": "assert weak_double(0) == 0\n",
    # Its only mutants (n -= 2, n -= 0) never leave the loop for an odd n: caught by a timeout, which does not count.
    "spin_drain": "assert spin_drain(3) == 0\n",
}
WRONG_MEAN = "def retry_mean(a, b):\n    return (a + b) / 2\n"
# What the scripted bug writer returns: a real bug (with a comment that gives it away), and a "bug" the tests pass.
TEACHER_BUGS = {"weak_double": "def weak_double(x):\n    return x * 2 + 1  # bug: adds one\n",
                "spin_drain": "def spin_drain(n):\n    while n > 0:\n        n -= 1\n    return n\n"}


def _parent(name: str) -> dict:
    return {"dialogue_id": f"dlg-{name}", "problem_id": f"prob-{name}", "seed_id": f"seed-{name}",
            "source": "stdlib-sample", "path": "pkg/mod.py", "license": "PSF-2.0", "method": "function_instruct",
            "instruction": f"Write a function `{name}` as the tests describe.", "solution": SOLUTIONS[name],
            "tests": TESTS[name], "tests_source": "questioner"}


def _fence(code: str) -> str:
    return f"```python\n{code}```"


def responder(messages: list[dict]) -> str:
    system = messages[0]["content"]
    if system.startswith("You write debugging exercises"):
        return _fence(TEACHER_BUGS[re.search(r"def (\w+)\(", messages[-1]["content"]).group(1)])
    assert system.startswith("You are an expert Python programmer who finds and fixes bugs"), system
    task = messages[3]["content"]  # after the system turn and the worked example
    name = re.search(r"def (\w+)\(", task).group(1)
    answered = sum(m["role"] == "assistant" for m in messages[4:])
    if name.startswith("unchanged"):
        return "Looks right to me.\n\n```python\n" + re.search(r"```python\n(.*?)```", task, re.S).group(1) + "```"
    if name.startswith("nocode"):
        return "The constant is wrong; multiply by three."
    if name.startswith("retry") and answered == 0:
        return "Integer division loses the half.\n\n" + _fence(WRONG_MEAN)
    return "The expression was changed; this restores it.\n\n" + _fence(SOLUTIONS[name])


def _run(method_context, names, **config):
    with method_context(responder) as (ctx, state):
        result = run(MethodInputs(dialogues=[_parent(n) for n in names]), CodeCorrectionConfig(**config), ctx)
        return result, ctx, state


def _by_problem(rows):
    return {row["problem_id"].removeprefix("prob-"): row for row in rows}


def test_kept_rows_rejects_and_reasons(method_context):
    result, ctx, _ = _run(method_context, [n for n in SOLUTIONS if not n.startswith("spin")])
    kept, rejected = _by_problem(result.rows), _by_problem(result.rejects)
    assert set(kept) == {"fixed_discount", "retry_mean"}
    assert {name: row["reason"] for name, row in rejected.items()} == {
        "unchanged_span": "fix_unchanged", "nocode_triple": "no_code_in_fix", "weak_double": "no_caught_mutation"}
    assert result.counts == {"fix_unchanged": 1, "no_code_in_fix": 1, "no_caught_mutation": 1}
    assert sum(result.extra["mutation_kinds"].values()) == 2
    assert result.extra["bugs_caught"] == 4
    assert result.prompt_tokens > 0 and result.completion_tokens > 0
    # Every row fits the stored schemas.
    assert frame(result.rows, DIALOGUES).height == 2
    assert frame(result.rejects, DIALOGUE_REJECTS).height == 3


def test_first_fix_passes(method_context):
    result, ctx, _ = _run(method_context, ["fixed_discount"])
    row = result.rows[0]
    parent = _parent("fixed_discount")
    assert [v["status"] for v in row["verdicts"]] == ["failed", "passed"]
    assert [v["turn"] for v in row["verdicts"]] == [0, 1]
    assert (row["turns"], row["passed_turn"]) == (1, 1)
    assert [m["role"] for m in row["messages"]] == ["user", "assistant"]
    user = row["messages"][0]["content"]
    assert user == row["instruction"]
    assert user.startswith(parent["instruction"])
    # The stored user turn shows a mutant of the solution (the first one, in the seeded order, that the tests
    # catch) and its real execution output; the worked example is not stored.
    buggy = re.search(r"```python\n(.*?)\n```", user, re.S).group(1)
    assert buggy + "\n" in [m.code for m in candidates(parent["solution"], 0, parent["dialogue_id"])]
    assert f"{EXECUTION_PREFIX}\n```\nExit status 1." in user
    assert "AssertionError: assert fixed_discount(" in user and "got:" in user
    assert "running_max" not in user
    assert row["verdicts"][0]["stderr"].strip().splitlines()[-1] in user
    assert row["solution"].strip() == parent["solution"].strip()
    assert row["task_messages"] == row["messages"][:1]
    # Provenance and identity.
    assert row["method"] == "code_correction"
    assert row["parent_id"] == row["problem_id"] == parent["problem_id"]
    assert row["dialogue_id"] == base.dialogue_id("code_correction", parent["dialogue_id"],
                                                   row["config_fingerprint"])
    assert {k: row[k] for k in (*base.PROVENANCE_KEYS, "language")} == base.provenance(parent)
    assert row["tests"] == parent["tests"] and row["tests_source"] == "questioner"
    assert row["feedback_mode"] == "execution"
    assert row["teacher_model"] == row["programmer_model"] == "scripted"
    assert row["prompt_version"].startswith("code_correction.v1@")
    assert (ctx.home.configs / f"{row['config_fingerprint']}.json").is_file()
    kind = row["mutation"].split(":")[0]
    assert result.extra["mutation_kinds"] == {kind: 1}


def test_wrong_fix_then_right_one_after_the_execution_output(method_context):
    result, _, state = _run(method_context, ["retry_mean"])
    row = result.rows[0]
    assert [v["status"] for v in row["verdicts"]] == ["failed", "failed", "passed"]
    assert (row["turns"], row["passed_turn"]) == (2, 2)
    assert [m["role"] for m in row["messages"]] == ["user", "assistant", "user", "assistant"]
    feedback = row["messages"][2]["content"]
    assert feedback.startswith(f"{EXECUTION_PREFIX}\n```\n")
    assert "AssertionError: assert retry_mean(1, 2) == 1\n  got: 1.5" in feedback
    assert feedback.rstrip().endswith(RETRY_REQUEST)
    assert row["solution"].strip() == SOLUTIONS["retry_mean"].strip()


def test_wrong_fix_with_no_turn_left_is_rejected(method_context):
    result, _, _ = _run(method_context, ["retry_mean"], max_turns=1)
    assert result.rows == []
    reject = result.rejects[0]
    assert reject["reason"] == "fix_fails_tests"
    assert [v["status"] for v in reject["verdicts"]] == ["failed", "failed"]
    assert reject["solution"].strip() == WRONG_MEAN.strip()


def test_unchanged_fix_is_not_run(method_context):
    result, ctx, _ = _run(method_context, ["unchanged_span"])
    reject = result.rejects[0]
    assert reject["reason"] == "fix_unchanged"
    assert [v["status"] for v in reject["verdicts"]] == ["failed"]  # only the buggy run
    assert reject["turns"] == 1 and reject["passed_turn"] is None


def test_no_caught_mutation(method_context):
    result, _, state = _run(method_context, ["weak_double"])
    reject = result.rejects[0]
    assert reject["reason"] == "no_caught_mutation"
    assert reject["messages"] == [] and reject["verdicts"] == [] and reject["turns"] == 0
    assert reject["mutation"].startswith("2 mutants, none caught: 2 passed")
    assert state.total_requests == 0  # nothing to correct, nothing asked


def test_a_mutant_that_times_out_is_not_the_bug(method_context):
    result, _, state = _run(method_context, ["spin_drain"], mutant_timeout_s=1)
    reject = result.rejects[0]
    assert reject["reason"] == "no_caught_mutation"
    assert reject["mutation"] == "2 mutants, none caught: 2 timeout"
    assert state.total_requests == 0


@pytest.mark.parametrize(("bug_source", "mutants_run"), [("mutation_then_teacher", 4), ("teacher", 0)])
def test_teacher_writes_the_bug(method_context, bug_source, mutants_run):
    result, _, _ = _run(method_context, ["weak_double", "spin_drain"], bug_source=bug_source, mutant_timeout_s=1)
    row = result.rows[0]
    user = row["messages"][0]["content"]
    assert "return x * 2 + 1\n```" in user  # the teacher's comment that names the bug is removed
    assert "# bug" not in user
    assert "AssertionError: assert weak_double(0) == 0\n  got: 1" in user
    assert row["prompt_version"].startswith("code_correction.v1@") and "+bug_writer.v1@" in row["prompt_version"]
    assert [v["status"] for v in row["verdicts"]] == ["failed", "passed"]
    assert result.extra["mutation_kinds"] == {"teacher": 1}
    assert result.extra["mutants_run"] == mutants_run
    # The tests pass on the teacher's "bug" for spin_drain: nothing to correct.
    assert [(r["problem_id"], r["reason"]) for r in result.rejects] == [("prob-spin_drain", "bug_not_caught")]
    assert result.rejects[0]["mutation"] == "the teacher's buggy code ran with status passed"


def test_unknown_bug_source_is_refused(method_context):
    with pytest.raises(ValueError, match="bug_source='typo'"):
        _run(method_context, ["fixed_discount"], bug_source="typo")
