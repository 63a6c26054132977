"""The methods that write a new problem from a verified one (evol_instruct, similar_problem, follow_up), the
interaction simulation, AIEV-complete dialogues and difficulty labels, with a scripted teacher and the real sandbox."""

from __future__ import annotations

import re

import pytest

from assets.generate.config import DialoguesConfig
from assets.generate.dialogue_loop import ends_verified, run_dialogues
from assets.generate.difficulty import label, label_difficulty
from assets.generate.methods import derived
from assets.generate.methods.base import MethodInputs
from assets.generate.methods.config import (
    EvolInstructConfig,
    FollowUpConfig,
    InteractionConfig,
    SimilarProblemConfig,
)
from assets.generate.questioner import problem_id

FUNCTIONS = {  # name -> (statement, correct body, wrong body, tests)
    "add_one": ("Write a function `add_one(x: int) -> int` that returns x plus 1.", "return x + 1", "return x",
                "assert add_one(1) == 2\nassert add_one(0) == 1\nassert add_one(-1) == 0"),
    "triple": ("Write a function `triple(x: int) -> int` that returns three times x; it must also work for negative "
               "numbers.", "return 3 * x", "return x + x",
               "assert triple(1) == 3\nassert triple(0) == 0\nassert triple(-2) == -6\nassert triple(5) == 15"),
    "square": ("Write a function `square(x: int) -> int` that returns x squared.", "return x * x", "return 2 * x",
               "assert square(3) == 9\nassert square(0) == 0\nassert square(-4) == 16\nassert square(1) == 1"),
    "add_two": ("Can you change it into `add_two(x: int) -> int`, adding 2 instead?", "return x + 2", "return x + 1",
                "assert add_two(1) == 3\nassert add_two(0) == 2\nassert add_two(-2) == 0\nassert add_two(5) == 7"),
    "weak": ("Write a function `weak(x: int) -> int` that returns x.", "return x", "return None",
             "assert weak(1) is None or True\nassert weak(2) is None or True\nassert weak(3) is None or True"),
}


def code(name: str, wrong: bool = False) -> str:
    return f"def {name}(x):\n    {FUNCTIONS[name][2 if wrong else 1]}\n"


def reply(name: str) -> str:
    statement, _, _, tests = FUNCTIONS[name]
    return (f"### Problem\n{statement}\n\n### Solution\n```python\n{code(name)}```\n\n"
            f"### Tests\n```python\n{tests}\n```\n")


def parent_problem(name: str) -> dict:
    statement, _, _, tests = FUNCTIONS[name]
    return {"problem_id": problem_id(statement, tests), "seed_id": f"seed-{name}", "source": "stdlib-sample",
            "path": f"{name}.py", "license": "PSF-2.0", "instruction": statement, "solution": code(name),
            "tests": tests, "entry_point": name, "tests_source": "questioner", "prompt_version": "oss_instruct.v1@x",
            "config_fingerprint": "fp", "method": "function_instruct"}


def parent_dialogue(name: str) -> dict:
    p = parent_problem(name)
    return {**p, "dialogue_id": f"d-{name}", "turns": 1, "passed_turn": 1,
            "messages": [{"role": "user", "content": p["instruction"]},
                         {"role": "assistant", "content": f"Here it is.\n\n```python\n{code(name)}```"}]}


class Teacher:
    """Recognises each role by its system turn; the programmer answers wrong first for names in `revise`."""

    def __init__(self, evolved: dict[str, str] | None = None, revise: tuple[str, ...] = ()) -> None:
        self.evolved = evolved or {}  # parent function -> the function its evolution / similar problem defines
        self.revise = revise
        self.requests: list[list[dict]] = []

    def __call__(self, messages: list[dict]) -> str:
        self.requests.append(messages)
        system = messages[0]["content"] if messages[0]["role"] == "system" else ""
        last = messages[-1]["content"]
        if system.startswith(("You make programming exercises harder", "You write a new programming exercise",
                              "You continue a programming conversation")):
            parent = re.findall(r"`(\w+)\(", "\n".join(m["content"] for m in messages[1:] if m["role"] == "user"))[-1]
            return reply(self.evolved[parent])
        if system.startswith("You are an expert Python programmer"):
            name = re.findall(r"`(\w+)\(", "\n".join(m["content"] for m in messages if m["role"] == "user"))[-1]
            answered_here = sum(m["role"] == "assistant" for m in messages[messages.index(
                next(m for m in messages if m["role"] == "user" and f"`{name}(" in m["content"])):])
            wrong = name in self.revise and answered_here == 0
            return f"Like this.\n\n```python\n{code(name, wrong)}```"
        if system.startswith(("You review Python code", "You are the person who asked")):
            return "It returns the wrong value for every input I tried; it should add the offset."
        assert last, "unexpected request"
        return "I do not understand."


def test_evol_instruct_keeps_the_lineage_and_rejects_weak_tests_after_fresh_attempts(method_context):
    teacher = Teacher(evolved={"add_one": "triple", "square": "weak"})
    inputs = MethodInputs(problems=[parent_problem("add_one"), parent_problem("square")])
    config = EvolInstructConfig(strategies=["harder_edge_cases"], fresh_attempts=1)
    with method_context(teacher) as (ctx, _):
        result = derived.evol_instruct(inputs, config, ctx, DialoguesConfig())
    assert [r["method"] for r in result.rows] == ["evol_instruct"]
    row = result.rows[0]
    assert row["parent_id"] == parent_problem("add_one")["problem_id"]
    assert "`triple(" in row["instruction"] and row["passed_turn"] == 1
    assert [m["role"] for m in row["messages"]] == ["user", "assistant"]
    assert row["verdicts"][-1]["status"] == "passed"
    # The weak tests are rejected, once more after a fresh start, and the reject names the parent.
    assert result.counts == {"tests_pass_trivial_solution": 1}
    assert result.extra["fresh_attempts"] == {"tests_pass_trivial_solution": 1}
    [reject] = result.rejects
    assert reject["parent_id"] == parent_problem("square")["problem_id"] and reject["method"] == "evol_instruct"
    evol_requests = [r for r in teacher.requests if r[0]["content"].startswith("You make")]
    assert all(derived.EVOLUTIONS["harder_edge_cases"] in r[-1]["content"] for r in evol_requests)
    assert result.extra["evolutions"] == {"harder_edge_cases": 2}


def test_evolution_choice_is_seeded_and_unknown_strategies_fail_in_one_line():
    config = EvolInstructConfig()
    drawn = {derived.evolution_of(f"p{i}", config) for i in range(40)}
    assert drawn == set(derived.EVOLUTIONS)
    assert derived.evolution_of("p1", config) == derived.evolution_of("p1", EvolInstructConfig())
    with pytest.raises(ValueError, match="evol_instruct.strategies"):
        derived.evolution_of("p1", EvolInstructConfig(strategies=["make_it_fun"]))


def test_similar_problem_answered_after_feedback(method_context):
    teacher = Teacher(evolved={"add_one": "square"}, revise=("square",))
    with method_context(teacher) as (ctx, _):
        result = derived.similar_problem(MethodInputs(problems=[parent_problem("add_one")]), SimilarProblemConfig(),
                                         ctx, DialoguesConfig())
    [row] = result.rows
    assert row["method"] == "similar_problem" and row["turns"] == 2 and row["passed_turn"] == 2
    assert [v["status"] for v in row["verdicts"]] == ["failed", "passed"]
    assert row["messages"][2]["content"].startswith("Execution result:")


def test_follow_up_continues_the_parent_dialogue(method_context):
    teacher = Teacher(evolved={"add_one": "add_two"})
    parent = parent_dialogue("add_one")
    with method_context(teacher) as (ctx, _):
        result = derived.follow_up(MethodInputs(dialogues=[parent]), FollowUpConfig(), ctx, DialoguesConfig())
    [row] = result.rows
    assert row["messages"][:2] == parent["messages"]
    assert [m["role"] for m in row["messages"]] == ["user", "assistant", "user", "assistant"]
    assert "add_two" in row["messages"][2]["content"] and "def add_two" in row["messages"][3]["content"]
    assert row["parent_id"] == parent["problem_id"] and row["method"] == "follow_up"
    # The programmer saw the parent conversation before the follow-up.
    programmer = [r for r in teacher.requests if r[0]["content"].startswith("You are an expert")]
    assert programmer and programmer[0][1:3] == parent["messages"]


def test_interaction_simulation_uses_the_simulated_user(method_context):
    teacher = Teacher(revise=("triple",))
    with method_context(teacher) as (ctx, _):
        result = derived.interaction_simulation(MethodInputs(problems=[parent_problem("triple")]),
                                                InteractionConfig(), ctx)
    [row] = result.rows
    assert row["method"] == "interaction_simulation" and row["feedback_mode"] == "human_sim"
    assert row["passed_turn"] == 2 and row["parent_id"] is None
    assert any(r[0]["content"].startswith("You are the person who asked") for r in teacher.requests)


def test_aiev_complete_dialogue_holds_the_tests_and_the_passing_run(method_context):
    teacher = Teacher(revise=("triple",))
    problem = parent_problem("triple")
    with method_context(teacher) as (ctx, _):
        result = run_dialogues([problem], ctx.teacher, ctx.programmer, ctx.runner,
                               DialoguesConfig(aiev_complete=True), home=ctx.home)
    [row] = result.dialogues
    last = row["messages"][-1]
    assert last["role"] == "user" and last["content"].startswith("Unit tests:")
    assert problem["tests"] in last["content"] and "Execution result:" in last["content"]
    assert "All 4 assertions passed (exit status 0)" in last["content"]
    assert ends_verified(row["messages"], row["verdicts"])
    assert not ends_verified(row["messages"][:-2], row["verdicts"][:-1])  # ends on the failing answer's feedback


def test_difficulty_labels_from_sampled_answers(method_context):
    class Sampler:
        def __call__(self, messages):
            name = re.search(r"`(\w+)\(", messages[-1]["content"]).group(1)
            return f"```python\n{code(name, wrong=name == 'square')}```"

    rows = [{"dialogue_id": name, "solution": code(name), "tests": FUNCTIONS[name][3],
             "task_messages": [{"role": "user", "content": FUNCTIONS[name][0]}]} for name in ("triple", "square")]
    rows.append({"dialogue_id": "packed", "solution": "", "tests": ""})  # no task: not labelled
    with method_context(Sampler()) as (ctx, state):
        counts = label_difficulty(rows, ctx.programmer, ctx.runner, samples=3)
        assert state.total_requests == 6
    assert [r.get("difficulty") for r in rows] == ["easy", "hard", None]
    assert [r.get("sample_pass_rate") for r in rows] == [1.0, 0.0, None]
    assert counts == {"easy": 1, "medium": 0, "hard": 1}
    assert [label(x) for x in (1.0, 2 / 3, 1 / 3, 0.0)] == ["easy", "medium", "medium", "hard"]
