"""teacher_selection: AutoCoder's switch from the teaching stage to self-learning, decided so that it holds up.

Student (the newest checkpoint) and the current teacher answer the same held-out problems, the SFT dataset's test
split: once (`single`) and, with `exec_feedback`, again after each failing run's output comes back to them as an
"Execution result:" turn (the shape of the training dialogues), up to `feedback_rounds` times. Every answer runs
against its row's tests in the sandbox. The decision rests on one of those modes (`decide_on`) and on the paired
comparison of eval/paired.py: the student takes over only when it is better at the configured confidence (McNemar's
exact test on the discordant problems); a split too small to show that at all is "undecided" and the teacher stays.

The row keeps both pass counts, the discordant counts, the paired difference with its bootstrap interval, the p-value,
the reason in words, every mode's figures and every problem's outcome for both models; the same goes to
$CRUCIBLE_HOME/teacher_selection.json. The `teacher` asset (assets/models/teacher.py) acts on it.
"""


import json
import time

import dagster as dg
import polars as pl
from pydantic import Field

from assets.automation import AFTER_NEW_CHECKPOINT
from assets.generate.dialogue_loop import execution_turns
from assets.generate.programs import execution_feedback
from assets.generate.replies import extract_code
from assets.keys import EVALUATE, FINETUNED_CHECKPOINT, SFT_DATASET, TEACHER_POOL, TEACHER_SELECTION
from assets.models.evaluation import open_backend
from assets.schemas import SELECTION, frame
from eval.paired import STUDENT, PairedComparison, compare_paired
from resources.home import Home
from resources.llm import TeacherLLM
from resources.sandbox import Sandbox
from resources.store import ParquetIOManager, read_table
from resources.teacher_state import current_round

SINGLE, EXEC_FEEDBACK = "single", "exec_feedback"
SELECTION_MODES = (SINGLE, EXEC_FEEDBACK)


class SelectionConfig(dg.Config):
    modes: list[str] = Field(default=[SINGLE, EXEC_FEEDBACK], description="single: one answer; exec_feedback: "
                                                                          "failing runs' output goes back to the "
                                                                          "model, up to feedback_rounds times.")
    decide_on: str = Field(default=EXEC_FEEDBACK, description="The mode whose results decide (one of modes).")
    feedback_rounds: int = Field(default=2, ge=0, description="Answers after the first, in exec_feedback.")
    confidence: float = Field(default=0.95, ge=0.5, lt=1.0,
                              description="The student takes over only when it is better at this confidence "
                                          "(one-sided exact McNemar test).")
    max_tokens: int = Field(default=512, description="Answer length cap, tokens.")
    seed: int = Field(default=0, description="Sampling and bootstrap seed.")


def validate_config(config: SelectionConfig) -> None:
    unknown = [m for m in config.modes if m not in SELECTION_MODES]
    if unknown or not config.modes:
        raise dg.Failure(f"teacher_selection modes {config.modes}: use one or both of {', '.join(SELECTION_MODES)}")
    if config.decide_on not in config.modes:
        raise dg.Failure(f"teacher_selection decide_on={config.decide_on!r} is not among modes {config.modes}")


def first_turns(messages: list[dict]) -> list[dict]:
    """A held-out row's question: its messages up to and including the first user turn."""
    end = next((i for i, m in enumerate(messages) if m["role"] == "user"), len(messages) - 1)
    return [dict(m) for m in messages[:end + 1]]


def solved_at(backend, rows: list[dict], runner, feedback_rounds: int, seed: int = 0) -> dict[str, int | None]:
    """Row id -> the answer (0 = the first) whose code passed the row's tests, None if none did. After a failing
    run the model sees that run's output and answers again, at most `feedback_rounds` more times."""
    from eval.backends import GenRequest

    chats = {row["id"]: first_turns(row["messages"]) for row in rows}
    solved: dict[str, int | None] = {row["id"]: None for row in rows}
    open_rows = list(rows)
    for turn in range(feedback_rounds + 1):
        answers = backend.generate([GenRequest(f"{row['id']}@{turn}", chats[row["id"]], seed=seed)
                                    for row in open_rows])
        verdicts = runner.run_checked([(row["id"], extract_code(answer) or "", row["tests"])
                                       for row, answer in zip(open_rows, answers)])
        still_open = []
        for row, answer, verdict in zip(open_rows, answers, verdicts):
            chats[row["id"]].append({"role": "assistant", "content": answer})
            if verdict.passed:
                solved[row["id"]] = turn
            else:
                chats[row["id"]].extend(execution_turns(execution_feedback(verdict), "", "user"))
                still_open.append(row)
        open_rows = still_open
        if not open_rows:
            break
    return solved


def passes(solved: dict[str, int | None], mode: str) -> dict[str, bool]:
    """Per row: passed with the first answer (single), or within the feedback rounds (exec_feedback)."""
    return {rid: turn == 0 if mode == SINGLE else turn is not None for rid, turn in solved.items()}


def compare_modes(student: dict[str, int | None], teacher: dict[str, int | None], config: SelectionConfig
                  ) -> dict[str, PairedComparison]:
    ids = sorted(student)
    out = {}
    for mode in config.modes:
        s, t = passes(student, mode), passes(teacher, mode)
        out[mode] = compare_paired([s[i] for i in ids], [t[i] for i in ids], config.confidence, config.seed)
    return out


def problem_outcomes(rows: list[dict], student: dict, teacher: dict) -> list[dict]:
    """What the decision rested on, per held-out problem: which answer of each model passed (null: none)."""
    return [{"id": r["id"], "problem_id": r.get("problem_id"), "student_solved_at": student.get(r["id"]),
             "teacher_solved_at": teacher.get(r["id"])} for r in rows]


def selection_row(round_: int, checkpoint: dict, teacher_model: str, config: SelectionConfig,
                  comparisons: dict[str, PairedComparison], outcomes: list[dict]) -> dict:
    decided = comparisons[config.decide_on]
    selected = STUDENT if decided.decision == STUDENT else "teacher"
    n = decided.problems
    return {
        "round": round_, "student": checkpoint["checkpoint"], "teacher": teacher_model, "mode": config.decide_on,
        "test_rows": n, "student_passes": decided.student_passes, "teacher_passes": decided.teacher_passes,
        "student_pass_rate": decided.student_passes / n if n else None,
        "teacher_pass_rate": decided.teacher_passes / n if n else None,
        "student_only": decided.student_only, "teacher_only": decided.teacher_only,
        "difference": decided.difference if n else None, "ci_low": decided.ci_low if n else None,
        "ci_high": decided.ci_high if n else None, "p_value": decided.p_value, "confidence": decided.confidence,
        "decision": decided.decision, "selected": selected, "reason": decided.reason,
        "next_teacher": checkpoint["checkpoint"] if selected == STUDENT else teacher_model,
        "by_mode": json.dumps({mode: c.as_dict() for mode, c in comparisons.items()}, default=str),
        "problems": json.dumps(outcomes), "dataset_version": checkpoint["dataset_version"],
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def decision_markdown(row: dict, comparisons: dict[str, PairedComparison]) -> str:
    lines = ["| mode | student | teacher | student-only | teacher-only | difference (95% CI) | McNemar p | decision |",
             "|---|---|---|---|---|---|---|---|"]
    for mode, c in comparisons.items():
        ci = f"{c.difference:+.3f} ({c.ci_low:+.3f} to {c.ci_high:+.3f})" if c.problems else "-"
        lines.append(f"| {mode}{' (decides)' if mode == row['mode'] else ''} | {c.student_passes}/{c.problems} | "
                     f"{c.teacher_passes}/{c.problems} | {c.student_only} | {c.teacher_only} | {ci} | "
                     f"{c.p_value:.3g} | {c.decision} |")
    return "\n".join(lines) + f"\n\n{row['reason']}"


@dg.asset(ins={"checkpoints": dg.AssetIn(FINETUNED_CHECKPOINT), "sft": dg.AssetIn(SFT_DATASET)},
          group_name=EVALUATE, pool=TEACHER_POOL, automation_condition=AFTER_NEW_CHECKPOINT)
def teacher_selection(context: dg.AssetExecutionContext, config: SelectionConfig, checkpoints: pl.DataFrame,
                      sft: pl.DataFrame, teacher: TeacherLLM, sandbox: Sandbox,
                      io_manager: dg.ResourceParam[ParquetIOManager]):
    """Student (newest checkpoint) versus the current teacher on the SFT test split, paired problem by problem; the
    student generates the next round only when it is better at the configured confidence."""
    from eval.backends import Decoding
    from eval.scoring import SandboxRunner

    validate_config(config)
    home: Home = io_manager.paths
    checkpoint = checkpoints.row(-1, named=True)
    test = sorted((r for r in sft.to_dicts() if r["split"] == "test"), key=lambda r: r["id"])
    rounds = config.feedback_rounds if EXEC_FEEDBACK in config.modes else 0
    solved = {"student": {}, "teacher": {}}
    teacher_model = teacher.endpoint.label
    if test:
        runner = SandboxRunner(sandbox.pool(), sandbox.verdict_cache())  # the resource's pool and cache
        for role, model in (("student", checkpoint["checkpoint"]), ("teacher", teacher_model)):
            backend = open_backend(role, model, teacher, Decoding(max_tokens=config.max_tokens))
            try:
                solved[role] = solved_at(backend, test, runner, rounds, config.seed)
            finally:
                backend.close()
    else:
        context.log.warning("the SFT dataset's test split is empty: nothing to compare, the teacher stays")
    comparisons = compare_modes(solved["student"], solved["teacher"], config)
    row = selection_row(current_round(home), checkpoint, teacher_model, config, comparisons,
                        problem_outcomes(test, solved["student"], solved["teacher"]))
    path = home.teacher_selection
    path.write_text(json.dumps(row, indent=2) + "\n")
    context.log.info(f"round {row['round']}: {row['reason']}; {row['selected']} generates the next round")
    earlier = read_table(TEACHER_SELECTION, home=home)
    table = pl.concat([frame(earlier.to_dicts(), SELECTION) if len(earlier) else frame([], SELECTION),
                       frame([row], SELECTION)])
    shown = ("round", "student", "teacher", "mode", "test_rows", "student_passes", "teacher_passes", "student_only",
             "teacher_only", "p_value", "decision", "selected", "reason", "next_teacher", "dataset_version")
    return dg.Output(table, metadata={
        **{k: row[k] for k in shown if row[k] is not None},
        "decision_table": dg.MetadataValue.md(decision_markdown(row, comparisons)),
        "problems": dg.MetadataValue.json(json.loads(row["problems"])),
        "decision_file": dg.MetadataValue.path(str(path))})
