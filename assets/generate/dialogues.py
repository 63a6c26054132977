"""verified_dialogues: the AIEV-Instruct loop. The programmer answers, the sandbox runs the answer with the tests, and
on failure the execution output becomes a turn of its own, followed by the questioner's feedback (a hint from the
error, or a Code-Feedback-style simulated user); the programmer revises, up to `max_turns`. Dialogues whose final
code passes are verified; the others are kept as rejects with the reason.
"""


import hashlib
import time
from collections import Counter
from dataclasses import dataclass, field

import dagster as dg

from assets.checks import (
    markdown_preview,
    not_empty_result,
    not_empty_spec,
    reason_metadata,
    stage_outs,
)
from assets.fingerprints import fingerprint, record_config
from assets.generate.config import EXECUTION_PREFIX, EXECUTION_ROLES, FEEDBACK_MODES, DialoguesConfig
from assets.generate.problems import REFERENCE_OUTPUTS
from assets.generate.programs import execution_feedback, program_with_tests, verdict_row
from assets.generate.replies import extract_code
from assets.generate.teacher_rounds import ask_round, sampling, tokens
from assets.keys import DIALOGUE_REJECTS_TABLE, OSS_INSTRUCT_PROBLEMS, VERIFIED_DIALOGUES
from assets.partitions import seed_source_partitions
from assets.plots import pass_rate_plot
from assets.prompts import load_prompt
from assets.schemas import DIALOGUE_REJECTS, DIALOGUES, frame
from resources.llm import ChatRequest, TeacherClient, TeacherError, TeacherLLM
from resources.sandbox import Sandbox
from resources.verdict_cache import CachedRunner

VERIFIED_CHECK = "final_turn_passes"
# The feedback role never writes code: generation stops at the first code fence.
FEEDBACK_STOP = ["```"]
# Used when the feedback reply was empty (cut at a code fence before any prose).
EMPTY_FEEDBACK = "The code does not pass the tests yet; please find the mistake and give the corrected code."
NO_CODE_FEEDBACK = "Your answer has no Python code block. Give the complete solution in one ```python block."


@dataclass
class _Dialogue:
    problem: dict
    messages: list[dict] = field(default_factory=list)  # what is stored: user/assistant(/tool) turns
    verdicts: list[dict] = field(default_factory=list)
    code: str | None = None
    turns: int = 0
    passed_turn: int | None = None
    reason: str | None = None  # set when the dialogue ended early (teacher_error)
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def add_usage(self, completion) -> None:
        p, c = tokens(completion)
        self.prompt_tokens += p
        self.completion_tokens += c


@dataclass
class DialoguesResult:
    dialogues: list[dict]
    rejects: list[dict]
    counts: Counter
    pass_rate_by_turn: list[float]
    prompt_tokens: int
    completion_tokens: int


def execution_turns(execution: str, feedback: str, role: str) -> list[dict]:
    """The turns a failing run adds to the dialogue, exactly as the programmer sees them next."""
    result = f"{EXECUTION_PREFIX}\n```\n{execution}\n```"
    feedback = feedback.strip() or EMPTY_FEEDBACK
    if role == "tool":
        return [{"role": "tool", "content": result}, {"role": "user", "content": feedback}]
    return [{"role": "user", "content": f"{result}\n\n{feedback}"}]


def run_dialogues(problems: list[dict], questioner: TeacherClient, programmer: TeacherClient, runner: CachedRunner,
                  config: DialoguesConfig, log=None) -> DialoguesResult:
    if config.feedback_mode not in FEEDBACK_MODES:
        raise ValueError(f"verified_dialogues config feedback_mode={config.feedback_mode!r}: use one of "
                         f"{', '.join(FEEDBACK_MODES)}")
    if config.execution_role not in EXECUTION_ROLES:
        raise ValueError(f"verified_dialogues config execution_role={config.execution_role!r}: use one of "
                         f"{', '.join(EXECUTION_ROLES)}")
    system = load_prompt("programmer", config.programmer_prompt_version)
    feedback = load_prompt(f"feedback_{config.feedback_mode}", config.feedback_prompt_version)
    versions = f"{system.version}+{feedback.version}"
    system_turns = system.render()
    counts: Counter = Counter()
    work = {p["problem_id"]: _Dialogue(p, [{"role": "user", "content": p["instruction"]}]) for p in problems}
    active = dict(work)

    def end_early(dialogue: _Dialogue, reason: str) -> None:
        counts[reason] += 1
        dialogue.reason = reason
        del active[dialogue.problem["problem_id"]]

    for turn in range(1, config.max_turns + 1):
        if not active:
            break
        answers = ask_round(programmer, [
            ChatRequest(pid, system_turns + d.messages,
                        config.programmer_temperature if turn == 1 else config.revision_temperature,
                        config.max_tokens, versions, sampling(config.seed)) for pid, d in active.items()])
        runnable: list[_Dialogue] = []
        no_code: list[_Dialogue] = []
        for pid, dialogue in list(active.items()):
            answer = answers[pid]
            if isinstance(answer, TeacherError):
                end_early(dialogue, "teacher_error")
                continue
            dialogue.add_usage(answer)
            dialogue.turns = turn
            dialogue.messages.append({"role": "assistant", "content": answer.content})
            dialogue.code = extract_code(answer.content, dialogue.problem.get("entry_point"))
            (runnable if dialogue.code else no_code).append(dialogue)
        verdicts = runner.run([{"id": d.problem["problem_id"], "code": program_with_tests(d.code, d.problem["tests"])}
                               for d in runnable])
        failing: list[tuple[_Dialogue, str]] = [(d, "") for d in no_code]
        for dialogue, verdict in zip(runnable, verdicts):
            dialogue.verdicts.append(verdict_row(verdict, turn))
            if verdict.passed:
                dialogue.passed_turn = turn
                del active[dialogue.problem["problem_id"]]
            else:
                failing.append((dialogue, execution_feedback(verdict)))
        # Tests whose expected values came from the reference count only if an independent first answer agrees;
        # after feedback that shows those values, agreement would prove nothing.
        for dialogue, _ in failing:
            if dialogue.problem.get("tests_source") == REFERENCE_OUTPUTS:
                end_early(dialogue, "reference_outputs_unconfirmed")
        failing = [(d, e) for d, e in failing if d.reason is None]
        if turn == config.max_turns:
            break
        # The questioner's feedback on every failing answer, asked as one round.
        hints = ask_round(questioner, [
            ChatRequest(d.problem["problem_id"], feedback.render(problem=d.problem["instruction"], code=d.code,
                                                                  execution=execution),
                        config.questioner_temperature, config.max_tokens, versions,
                        sampling(config.seed, stop=FEEDBACK_STOP))
            for d, execution in failing if d.code])
        for dialogue, execution in failing:
            if not dialogue.code:
                dialogue.messages.append({"role": "user", "content": NO_CODE_FEEDBACK})
                continue
            hint = hints[dialogue.problem["problem_id"]]
            if isinstance(hint, TeacherError):
                end_early(dialogue, "teacher_error")
                continue
            dialogue.add_usage(hint)
            dialogue.messages += execution_turns(execution, hint.content.strip(), config.execution_role)
        if log:
            done = sum(d.passed_turn is not None for d in work.values())
            log.info(f"programmer turn {turn}: {len(answers)} answered, {done}/{len(work)} verified so far, "
                     f"{len(active)} continue")

    config_fp = record_config(fingerprint(config, questioner.model, programmer.model, versions),
                              stage=VERIFIED_DIALOGUES, config=config, questioner_model=questioner.model,
                              programmer_model=programmer.model, prompt_versions=versions)
    dialogues, rejects = [], []
    for dialogue in work.values():
        p = dialogue.problem
        row = {
            "dialogue_id": hashlib.sha256(f"{p['problem_id']}:{config_fp}".encode()).hexdigest()[:16],
            "problem_id": p["problem_id"], **{k: p[k] for k in ("seed_id", "source", "path", "license")},
            "teacher_model": questioner.model, "programmer_model": programmer.model,
            "prompt_version": f"{p['prompt_version']}+{versions}",
            "config_fingerprint": record_config(fingerprint(p["config_fingerprint"], config_fp),
                                                problems_fingerprint=p["config_fingerprint"],
                                                dialogues_fingerprint=config_fp),
            "feedback_mode": config.feedback_mode, "instruction": p["instruction"], "solution": dialogue.code,
            "tests": p["tests"], "tests_source": p.get("tests_source"), "messages": dialogue.messages,
            "turns": dialogue.turns,
            "passed_turn": dialogue.passed_turn, "verdicts": dialogue.verdicts,
            "prompt_tokens": dialogue.prompt_tokens, "completion_tokens": dialogue.completion_tokens,
        }
        if dialogue.passed_turn is not None:
            dialogues.append(row)
            continue
        reason = dialogue.reason
        if reason is None:
            reason = "no_code_after_max_turns" if not dialogue.code else "unsolved_after_max_turns"
            counts[reason] += 1
        rejects.append({**row, "reason": reason})
    n = len(work)
    rates = [sum(1 for d in work.values() if d.passed_turn is not None and d.passed_turn <= k) / n if n else 0.0
             for k in range(1, config.max_turns + 1)]
    return DialoguesResult(dialogues, rejects, counts, rates, sum(d.prompt_tokens for d in work.values()),
                           sum(d.completion_tokens for d in work.values()))


@dg.multi_asset(
    outs=stage_outs("generate", {
        VERIFIED_DIALOGUES: "Multi-turn dialogues whose final code passes the problem's tests in the sandbox, with "
                            "every turn's verdict.",
        DIALOGUE_REJECTS_TABLE: "Dialogues that never passed, with the reason.",
    }),
    ins={"problems": dg.AssetIn(OSS_INSTRUCT_PROBLEMS)},
    partitions_def=seed_source_partitions,
    check_specs=[
        dg.AssetCheckSpec(VERIFIED_CHECK, asset=VERIFIED_DIALOGUES,
                          description="Every verified dialogue ends with an assistant turn whose code passed."),
        not_empty_spec(VERIFIED_DIALOGUES, "At least one verified dialogue."),
    ],
)
def verified_dialogues(context: dg.AssetExecutionContext, config: DialoguesConfig, problems, teacher: TeacherLLM,
                       sandbox: Sandbox):
    """AIEV-Instruct multi-turn dialogues of one seed source, verified in the sandbox."""
    started = time.monotonic()
    questioner = teacher.client()
    programmer = teacher.client()
    if config.programmer_model:
        programmer.model = config.programmer_model
    runner = CachedRunner(sandbox.pool())
    result = run_dialogues(problems.to_dicts(), questioner, programmer, runner, config, context.log)
    dialogues = frame(result.dialogues, DIALOGUES)
    rejects = frame(result.rejects, DIALOGUE_REJECTS)
    turns = dialogues["turns"].to_list()
    plot = pass_rate_plot(result.pass_rate_by_turn, f"{context.partition_key}: pass rate by turn ({len(problems)} "
                                                    f"problems, feedback={config.feedback_mode})",
                          context.partition_key)
    yield dg.Output(dialogues, output_name=VERIFIED_DIALOGUES, metadata={
        "problems": len(problems), "verified": len(dialogues),
        **{f"pass_rate_turn_{k}": round(r, 4) for k, r in enumerate(result.pass_rate_by_turn, start=1)},
        "mean_turns": round(sum(turns) / len(turns), 3) if turns else 0.0,
        "prompt_tokens": result.prompt_tokens, "completion_tokens": result.completion_tokens,
        "new_tokens_this_run": questioner.totals.prompt_tokens + questioner.totals.completion_tokens
        + programmer.totals.prompt_tokens + programmer.totals.completion_tokens,
        "sandbox_runs": runner.executed, "sandbox_cached": runner.cached,
        "seconds": round(time.monotonic() - started, 1), **reason_metadata(result.counts),
        "pass_rate_by_turn": plot,
        "preview": markdown_preview(dialogues, ["dialogue_id", "turns", "passed_turn", "instruction"]),
    })
    yield dg.Output(rejects, output_name=DIALOGUE_REJECTS_TABLE, metadata=reason_metadata(result.counts))
    final_ok = all(m and m[-1]["role"] == "assistant" and v and v[-1]["status"] == "passed"
                   for m, v in zip(dialogues["messages"].to_list(), dialogues["verdicts"].to_list()))
    yield dg.AssetCheckResult(check_name=VERIFIED_CHECK, asset_key=VERIFIED_DIALOGUES, passed=final_ok,
                              severity=dg.AssetCheckSeverity.ERROR)
    yield not_empty_result(VERIFIED_DIALOGUES, dialogues, severity=dg.AssetCheckSeverity.WARN)
