"""The stored-table checks on small real tables: each passes on what the pipeline writes and fails, naming the row,
on a table corrupted after it was written. Re-runs use the real bwrap sandbox."""

from __future__ import annotations

import json

import dagster as dg
import polars as pl
import pytest

from assets.checks.registry import (
    CONTAMINATION_CHECK,
    DUPLICATES_CHECK,
    LINEAGE_CHECK,
    PASS_RATE_CHECK,
    RERUN_CHECK,
    SCORES_CHECK,
    SELECTION_CHECK,
    SPLITS_CHECK,
    STORED_TABLE_CHECK,
    checks_for,
    evaluate,
)
from assets.checks.stored import CheckInput
from assets.checks.tables import message_problems
from assets.models.teacher_selection import SelectionConfig, compare_modes, selection_row
from assets.schemas import (
    CHECKPOINTS,
    CONTAMINATION_REPORT,
    DIALOGUE_REJECTS,
    SCORES,
    SELECTION,
    SFT,
    TEACHERS,
    frame,
)
from eval.benchmarks import load_benchmarks
from resources.home import Home
from resources.store import table_path, write_table
from resources.teacher_state import TeacherState, write_teacher_state
from tests.dialogue_rows import dialogue_row, write_dialogues

CURATED = ("verified_dialogues", "deduplicated_dialogues", "decontaminated_dialogues")


@pytest.fixture
def home(tmp_path) -> Home:
    home = Home(tmp_path / "home")
    write_dialogues("stdlib", range(8), CURATED, home=home)
    return home


@pytest.fixture
def pool(bwrap_pool2):
    return bwrap_pool2


def lines_of(home, asset, check, pool=None, instance=None, partition="stdlib"):
    found = [evaluate(c, CheckInput(home, partition, instance, lambda: pool, sample=0))
             for c in checks_for(asset) if c.name == check]
    assert len(found) == 1, found
    return found[0]


def rewrite(home: Home, asset: str, change, partition: str = "stdlib") -> pl.DataFrame:
    path = table_path(asset, partition, home)
    df = change(pl.read_parquet(path))
    write_table(df, path)
    return df


def test_every_check_passes_on_what_the_pipeline_writes(home, pool):
    lines = [evaluate(c, CheckInput(home, "stdlib", None, lambda: pool, sample=0))
             for asset in CURATED for c in checks_for(asset)]
    assert lines and all(line.status == "PASS" for line in lines), [line.text() for line in lines]
    assert {line.check for line in lines} >= {STORED_TABLE_CHECK, RERUN_CHECK, DUPLICATES_CHECK, CONTAMINATION_CHECK}


def test_a_wrong_final_answer_fails_the_rerun_naming_the_row(home, pool):
    bad_id = dialogue_row(3)["dialogue_id"]
    rewrite(home, "verified_dialogues", lambda df: df.with_columns(
        pl.when(pl.col("dialogue_id") == bad_id).then(pl.col("solution").str.replace("return ", "return 1 + "))
        .otherwise(pl.col("solution")).alias("solution")))
    line = lines_of(home, "verified_dialogues", RERUN_CHECK, pool)
    assert line.status == "FAIL" and bad_id in line.problem and "failed" in line.problem


def test_a_dropped_column_fails_the_table_check(home):
    rewrite(home, "decontaminated_dialogues", lambda df: df.drop("tests"))
    line = lines_of(home, "decontaminated_dialogues", STORED_TABLE_CHECK)
    assert line.status == "FAIL" and "missing column tests" in line.problem


def test_a_duplicated_id_fails_the_table_check_naming_it(home):
    df = rewrite(home, "deduplicated_dialogues", lambda df: pl.concat([df, df.slice(2, 1)]))
    line = lines_of(home, "deduplicated_dialogues", STORED_TABLE_CHECK)
    assert line.status == "FAIL" and "share an id" in line.problem and df["dialogue_id"][2] in line.problem
    assert lines_of(home, "deduplicated_dialogues", DUPLICATES_CHECK).status == "FAIL"


def test_a_pasted_benchmark_problem_fails_the_contamination_check(home):
    item = next(i for i in load_benchmarks() if i.task_id == "HumanEval/0")
    pasted = {**dialogue_row(20), "dialogue_id": "pasted-he0", "instruction": item.description,
              "solution": item.solution}
    rewrite(home, "decontaminated_dialogues",
            lambda df: pl.concat([df, frame([pasted], dict(df.schema))]))
    line = lines_of(home, "decontaminated_dialogues", CONTAMINATION_CHECK)
    assert line.status == "FAIL" and "pasted-he0" in line.problem and "HumanEval/0" in line.problem


def test_a_row_the_report_removed_fails_when_it_comes_back(home):
    kept = dialogue_row(5)["dialogue_id"]
    write_table(frame([{"dialogue_id": kept, "benchmark": "mbpp", "task_id": "Mbpp/2", "layer": "embedding",
                        "score": 0.97}], CONTAMINATION_REPORT),
                table_path("contamination_report", "stdlib", home))
    line = lines_of(home, "decontaminated_dialogues", CONTAMINATION_CHECK)
    assert line.status == "FAIL" and kept in line.problem and "contamination_report" in line.problem


def test_a_file_replaced_after_its_materialization_fails_the_row_count(home):
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("seed_source", ["stdlib"])
    instance.report_runless_asset_event(dg.AssetMaterialization(
        "deduplicated_dialogues", partition="stdlib", metadata={"dagster/row_count": 8}))
    assert lines_of(home, "deduplicated_dialogues", STORED_TABLE_CHECK, instance=instance).status == "PASS"
    rewrite(home, "deduplicated_dialogues", lambda df: df.head(7))
    line = lines_of(home, "deduplicated_dialogues", STORED_TABLE_CHECK, instance=instance)
    assert line.status == "FAIL" and "7 rows" in line.problem and "recorded 8" in line.problem


def test_the_pass_rate_floor_warns_below_it(home):
    rejects = [{**dialogue_row(i), "reason": "max_turns", "detail": ""} for i in range(100, 130)]
    write_table(frame(rejects, DIALOGUE_REJECTS), table_path("dialogue_rejects", "stdlib", home))
    line = lines_of(home, "verified_dialogues", PASS_RATE_CHECK)
    assert line.status == "WARN" and "8 of 38 kept" in line.problem


@pytest.mark.parametrize("messages, dialogue, expected", [
    ([{"role": "user", "content": "q"}, {"role": "assistant", "content": "```python\nx = 1\n```"}], True, []),
    ([{"role": "system", "content": "s"}, {"role": "user", "content": "q"},
      {"role": "assistant", "content": "def f():\n    pass"},
      {"role": "user", "content": "Unit tests:\n..."}], True, []),
    ([{"role": "assistant", "content": "```x```"}], True, ["starts with 'assistant'"]),
    ([{"role": "user", "content": "q"}, {"role": "assistant", "content": "I cannot."}], True, ["holds no code"]),
    ([{"role": "user", "content": "q"}, {"role": "assistant", "content": "```a```"},
      {"role": "assistant", "content": "```b```"}], True, ["two assistant turns"]),
    ([{"role": "user", "content": "q"}, {"role": "tool", "content": "out"}], False, ["tool turn"]),
    ([{"role": "user", "content": "q"}, {"role": "robot", "content": "x"}], False, ["unknown role"]),
    ([{"role": "user", "content": "q"}, {"role": "assistant", "content": "```a```"},
      {"role": "user", "content": "and now?"}], True, ["after the final assistant turn"]),
])
def test_message_shapes(messages, dialogue, expected):
    found = message_problems(messages, dialogue)
    assert len(found) == len(expected) and all(e in f for e, f in zip(expected, found)), found


def _release(home: Home, rows: list[dict]) -> None:
    write_table(frame(rows, SFT), table_path("sft_dataset", None, home))


def test_a_problem_in_both_splits_fails_the_split_check(home):
    rows = [{**dialogue_row(i), "id": dialogue_row(i)["dialogue_id"], "split": "train" if i else "test",
             "dataset_version": "v"} for i in range(4)]
    _release(home, rows)
    assert lines_of(home, "sft_dataset", SPLITS_CHECK, partition=None).status == "PASS"
    rows.append({**rows[0], "id": "copy", "split": "train"})
    _release(home, rows)
    line = lines_of(home, "sft_dataset", SPLITS_CHECK, partition=None)
    assert line.status == "FAIL" and rows[0]["problem_id"] in line.problem


def _models(home: Home, manifest: dict, student_wins: bool = False, **overrides) -> dict:
    """A checkpoint, its scores and a decision built the way teacher_selection builds it (six held-out problems),
    with `overrides` written over the decision's row."""
    ckpt = str(home.root / "checkpoints" / "c1")
    write_table(frame([{"checkpoint": ckpt, "recipe": "cpu-tiny", "base_model": "b", "dataset_version": "v",
                        "final_loss": 1.0}], CHECKPOINTS), table_path("finetuned_checkpoint", None, home))
    write_table(frame([{"model_role": "checkpoint", "model": ckpt, "benchmark": "humaneval", "mode": "single",
                        "pass_at_1": 0.2, "ci95_low": 0.0, "ci95_high": 0.6, "tasks": 5, "samples": 5,
                        "manifest": json.dumps(manifest), "checkpoint": ckpt}], SCORES),
                table_path("benchmark_scores", None, home))
    student = {f"p{i}": 0 if student_wins or i < 3 else None for i in range(6)}
    teacher = {f"p{i}": None if student_wins else 0 for i in range(6)}
    config = SelectionConfig()
    row = selection_row(1, {"checkpoint": ckpt, "dataset_version": "v"}, "bundled:teacher", config,
                        compare_modes(student, teacher, config),
                        [{"id": k, "student_solved_at": student[k], "teacher_solved_at": teacher[k]} for k in student])
    row = {**row, **overrides}
    write_table(frame([row], SELECTION), table_path("teacher_selection", None, home))
    home.teacher_selection.parent.mkdir(parents=True, exist_ok=True)
    home.teacher_selection.write_text(json.dumps(row))
    return row


MANIFEST = {"benchmark": "humaneval", "n_tasks": 5, "sandbox": {}, "versions": {}, "seed": 0, "generation": {}}


def test_scores_need_a_manifest_that_matches_the_row(home):
    _models(home, MANIFEST)
    assert lines_of(home, "benchmark_scores", SCORES_CHECK, partition=None).status == "PASS"
    _models(home, {**MANIFEST, "n_tasks": 164})
    line = lines_of(home, "benchmark_scores", SCORES_CHECK, partition=None)
    assert line.status == "FAIL" and "164 tasks" in line.problem


def test_a_decision_that_contradicts_itself_fails(home):
    row = _models(home, MANIFEST)
    assert row["decision"] == "teacher"
    assert lines_of(home, "teacher_selection", SELECTION_CHECK, partition=None).status == "PASS"
    assert _models(home, MANIFEST, student_wins=True)["decision"] == "student"
    assert lines_of(home, "teacher_selection", SELECTION_CHECK, partition=None).status == "PASS"
    _models(home, MANIFEST, selected="student")  # next_teacher still names the teacher
    line = lines_of(home, "teacher_selection", SELECTION_CHECK, partition=None)
    assert line.status == "FAIL" and "decision='teacher' but selected='student'" in line.problem


def test_a_decision_its_own_outcomes_do_not_support_fails(home):
    # Six problems, three passed by each: a stored "student" decision (and its counts) cannot come from these.
    _models(home, MANIFEST, decision="student", selected="student", next_teacher=str(home.root / "checkpoints" / "c1"))
    line = lines_of(home, "teacher_selection", SELECTION_CHECK, partition=None)
    assert line.status == "FAIL" and "per-problem outcomes give" in line.problem
    _models(home, MANIFEST, student_wins=True, p_value=0.001)
    line = lines_of(home, "teacher_selection", SELECTION_CHECK, partition=None)
    assert line.status == "FAIL" and "p_value=0.001" in line.problem


def _teachers(home: Home, rows: list[dict]) -> None:
    write_table(frame(rows, TEACHERS), table_path("teacher", None, home))
    write_teacher_state(home, TeacherState(**rows[-1]))


def test_the_lineage_of_teachers_must_hold_together(home):
    first = {"round": 1, "role": "configured", "model": "bundled:teacher", "since_round": 1, "reason": "start"}
    kept = {**first, "round": 2, "reason": "kept: not better"}
    _models(home, MANIFEST)  # round 1's decision: the teacher stays
    _teachers(home, [first, kept])
    assert lines_of(home, "teacher", LINEAGE_CHECK, partition=None).status == "PASS"
    gguf = home.root / "models" / "teachers" / "c1.q8_0.gguf"
    gguf.parent.mkdir(parents=True)
    gguf.write_bytes(b"GGUF")
    switched = {"round": 2, "role": "student", "model": "c1.q8_0", "since_round": 2, "reason": "better",
                "checkpoint": str(home.root / "checkpoints" / "c1"), "serving": "gguf", "gguf": str(gguf)}
    _teachers(home, [first, switched])  # a change of teacher that round 1's decision does not support
    line = lines_of(home, "teacher", LINEAGE_CHECK, partition=None)
    assert line.status == "FAIL" and "without a recorded student decision for round 1" in line.problem
    _models(home, MANIFEST, student_wins=True)
    assert lines_of(home, "teacher", LINEAGE_CHECK, partition=None).status == "PASS"
    gguf.unlink()
    line = lines_of(home, "teacher", LINEAGE_CHECK, partition=None)
    assert line.status == "FAIL" and "is gone" in line.problem
    _teachers(home, [first, {**kept, "round": 3}])
    line = lines_of(home, "teacher", LINEAGE_CHECK, partition=None)
    assert line.status == "FAIL" and "without gaps" in line.problem
    _teachers(home, [first, kept])
    write_teacher_state(home, TeacherState(**{**kept, "round": 3}))
    line = lines_of(home, "teacher", LINEAGE_CHECK, partition=None)
    assert line.status == "FAIL" and "not the table's newest row" in line.problem


def test_an_unknown_asset_is_a_one_line_error(home):
    with pytest.raises(ValueError, match="no checks; choose one of"):
        checks_for("nope")
