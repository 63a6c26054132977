"""Methods that write a new problem from a verified one, then answer it in the AIEV dialogue loop:

- `evol_instruct` (MagicoderS' Evol-Instruct): the parent made harder in one named way;
- `similar_problem` (Code-Feedback): a new problem close to the parent;
- `follow_up` (Code-Feedback): a further request on a verified dialogue, answered as its next turns;
- `interaction_simulation` (Code-Feedback): no new problem; the parent answered with execution results and a simulated
  user's feedback.

The new problems go through the questioner's phases (assets/generate/questioner.py: reference run against its tests,
repairs with the execution output, fresh attempts, the test-quality gates), so an evolved problem is kept only with a
reference that passes tests that fail on a trivial solution; then the programmer answers it with execution feedback
(assets/generate/dialogue_loop.py). `problems_then_dialogues` is the path any problem-writing method can take.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from assets.generate.config import DialoguesConfig, ProblemsConfig
from assets.generate.dialogue_loop import run_dialogues
from assets.generate.methods.base import MethodContext, MethodInputs, MethodResult
from assets.generate.methods.config import (
    EVOL_STRATEGIES,
    EvolInstructConfig,
    FollowUpConfig,
    InteractionConfig,
    SimilarProblemConfig,
)
from assets.generate.questioner import QuestionerTask, generate_problems
from assets.keys import METHOD_DIALOGUES

# What each evolution asks for, as the prompt's {{evolution}}.
EVOLUTIONS = {
    "add_constraint": "Add one new requirement that changes what a correct solution must do.",
    "harder_edge_cases": "Make the task cover harder edge cases (empty input, duplicates, negative or very large "
                         "values, ties) and state exactly how each must be handled.",
    "complexity_requirement": "Require a better time or memory complexity than the obvious solution, state the bound, "
                              "and include a test with an input large enough that a naive solution would be slow.",
    "deeper_reasoning": "Make the task need one more reasoning step: combine it with a second, related computation.",
    "concretize_types": "Replace general inputs by specific, concrete data (for example a list of (name, score) "
                        "tuples or a dict of lists) and define the output's exact type and order.",
}
assert set(EVOLUTIONS) == set(EVOL_STRATEGIES)


def problem_reject(reject: dict) -> dict:
    """A questioner reject (schemas.PROBLEM_REJECTS) as a method reject (schemas.DIALOGUE_REJECTS)."""
    return {**{k: reject.get(k) for k in ("method", "parent_id", "seed_id", "source", "reason", "detail",
                                          "messages", "verdicts")},
            "solution": None, "instruction": None}


def problems_then_dialogues(items: list[dict], task: QuestionerTask, problems_config: ProblemsConfig,
                            dialogues_config: DialoguesConfig, ctx: MethodContext,
                            context_of: Callable[[dict], list[dict]] | None = None) -> MethodResult:
    """New problems from `items` by `task`, each answered in the dialogue loop; `context_of(problem)` gives earlier
    turns a problem's dialogue continues (a follow-up's parent dialogue)."""
    made = generate_problems(items, ctx.teacher, ctx.runner, problems_config, ctx.log, ctx.home, task,
                             stage=METHOD_DIALOGUES)
    ctx.info(f"{task.method}: {len(made.problems)} problems from {len(items)} parents, {sum(made.counts.values())} "
             "rejected")
    if context_of:
        for problem in made.problems:
            problem["context"] = context_of(problem)
    answered = run_dialogues(made.problems, ctx.teacher, ctx.programmer, ctx.runner, dialogues_config, ctx.log,
                             ctx.home, task.method)
    return MethodResult(answered.dialogues, [problem_reject(r) for r in made.rejects] + answered.rejects,
                        made.counts + answered.counts, made.prompt_tokens + answered.prompt_tokens,
                        made.completion_tokens + answered.completion_tokens,
                        {"problems_written": len(made.problems), "fresh_attempts": dict(made.retried),
                         "pass_rate_by_turn": [round(r, 4) for r in answered.pass_rate_by_turn]})


def _parent_variables(problem: dict) -> dict:
    return {"problem": problem["instruction"].strip(), "solution": (problem["solution"] or "").strip()}


def evolution_of(problem_id: str, config: EvolInstructConfig) -> str:
    """The evolution applied to a parent: drawn from the configured ones by a seeded RNG, stable per parent."""
    unknown = [s for s in config.strategies if s not in EVOLUTIONS]
    if unknown or not config.strategies:
        raise ValueError(f"method_dialogues config evol_instruct.strategies={config.strategies!r}: use some of "
                         f"{', '.join(EVOLUTIONS)}")
    return random.Random(f"{config.seed}:{problem_id}").choice(sorted(config.strategies))


def evol_instruct(inputs: MethodInputs, config: EvolInstructConfig, ctx: MethodContext,
                  dialogues: DialoguesConfig) -> MethodResult:
    task = QuestionerTask("evol_instruct", "evol_instruct",
                          lambda p: {**_parent_variables(p), "evolution": EVOLUTIONS[evolution_of(p["problem_id"],
                                                                                                  config)]},
                          key="problem_id", parent="problem_id")
    result = problems_then_dialogues(inputs.problems, task, config, dialogues, ctx)
    drawn = [evolution_of(p["problem_id"], config) for p in inputs.problems]
    result.extra["evolutions"] = {s: drawn.count(s) for s in sorted(set(drawn))}
    return result


def similar_problem(inputs: MethodInputs, config: SimilarProblemConfig, ctx: MethodContext,
                    dialogues: DialoguesConfig) -> MethodResult:
    task = QuestionerTask("similar_problem", "similar_problem", _parent_variables, key="problem_id",
                          parent="problem_id")
    return problems_then_dialogues(inputs.problems, task, config, dialogues, ctx)


def follow_up(inputs: MethodInputs, config: FollowUpConfig, ctx: MethodContext,
              dialogues: DialoguesConfig) -> MethodResult:
    """Follow-ups of verified dialogues: the parent's final code is what the request builds on, and the new turns are
    appended to the parent's conversation."""
    parents = {d["problem_id"]: d for d in inputs.dialogues}
    task = QuestionerTask("follow_up", "follow_up", _parent_variables, key="problem_id", parent="problem_id")
    return problems_then_dialogues(list(parents.values()), task, config, dialogues, ctx,
                                   context_of=lambda p: list(parents[p["parent_id"]]["messages"]))


def interaction_simulation(inputs: MethodInputs, config: InteractionConfig, ctx: MethodContext) -> MethodResult:
    answered = run_dialogues(inputs.problems, ctx.teacher, ctx.programmer, ctx.runner, config, ctx.log, ctx.home,
                             "interaction_simulation")
    return MethodResult(answered.dialogues, answered.rejects, answered.counts, answered.prompt_tokens,
                        answered.completion_tokens,
                        {"pass_rate_by_turn": [round(r, 4) for r in answered.pass_rate_by_turn]})
