"""Checks on what the model stages stored: the newest checkpoint's folder is complete and its loss finite, its
scores are present with a manifest and a sane interval, the stored teacher decision agrees with its own per-problem
outcomes and with the decision file, the lineage of teachers holds together, and the staged Hub folders validate."""

from __future__ import annotations

import json
import math
from pathlib import Path

from assets.checks.stored import (
    CheckInput,
    CheckSkipped,
    Outcome,
    latest_materialization,
    metadata_value,
    stored_table,
)
from assets.keys import FINETUNED_CHECKPOINT, TEACHER_SELECTION

MANIFEST_KEYS = ("benchmark", "n_tasks", "sandbox", "versions", "seed", "generation")
WEIGHTS = ("*.safetensors", "*.bin", "*.gguf")


def newest_checkpoint(check: CheckInput) -> dict:
    return stored_table(FINETUNED_CHECKPOINT, CheckInput(check.home, None)).row(-1, named=True)


def checkpoint_complete(asset: str, check: CheckInput) -> Outcome:
    """The newest checkpoint row: its folder holds a config, weights and a tokenizer, and its loss is finite."""
    row = stored_table(asset, check).row(-1, named=True)
    folder = Path(row["checkpoint"])
    problems = []
    if not folder.is_dir():
        problems.append(f"checkpoint={folder}: the folder is gone")
    else:
        if not any((folder / name).is_file() for name in ("config.json", "adapter_config.json")):
            problems.append(f"checkpoint={folder}: no config.json or adapter_config.json")
        if not any(next(folder.glob(pattern), None) for pattern in WEIGHTS):
            problems.append(f"checkpoint={folder}: no weights ({', '.join(WEIGHTS)})")
        if not any((folder / name).is_file() for name in ("tokenizer.json", "tokenizer_config.json")):
            problems.append(f"checkpoint={folder}: no tokenizer")
    loss = row.get("final_loss")
    if loss is None or not math.isfinite(loss):
        problems.append(f"checkpoint={folder}: final_loss is {loss}")
    return Outcome.from_problems(problems, checkpoint=str(folder))


def _manifest_problem(row: dict) -> str | None:
    """What is wrong with a score row's manifest: not JSON, a missing part, or another benchmark or task count than
    the row's."""
    try:
        manifest = json.loads(row["manifest"] or "")
    except json.JSONDecodeError:
        return "its manifest is not JSON"
    missing = [k for k in MANIFEST_KEYS if k not in manifest]
    if missing:
        return f"its manifest lacks {', '.join(missing)}"
    if manifest["benchmark"] != row["benchmark"] or manifest["n_tasks"] != row["tasks"]:
        return (f"its manifest is for {manifest['benchmark']} with {manifest['n_tasks']} tasks, the row says "
                f"{row['benchmark']} with {row['tasks']}")
    return None


def scores_present(asset: str, check: CheckInput) -> Outcome:
    """The newest checkpoint has scores; every score row has a manifest, tasks, and low <= pass@1 <= high in
    [0, 1]."""
    scores = stored_table(asset, check)
    checkpoint = newest_checkpoint(check)["checkpoint"]
    problems = []
    mine = scores.filter((scores["checkpoint"] == checkpoint) & (scores["model_role"] == "checkpoint"))
    if not len(mine):
        problems.append(f"checkpoint={checkpoint}: no scores for the newest checkpoint")
    for row in scores.to_dicts():
        label = f"{row['model_role']} {row['model']} {row['benchmark']} {row['mode']}"
        low, value, high = row["ci95_low"], row["pass_at_1"], row["ci95_high"]
        if value is None or not (0 <= (low if low is not None else value) <= value
                                 <= (high if high is not None else value) <= 1):
            problems.append(f"{label}: pass@1 {value} outside its interval [{low}, {high}] or [0, 1]")
        if not row["tasks"] or row["tasks"] < 1 or (row["samples"] or 0) < row["tasks"]:
            problems.append(f"{label}: {row['tasks']} tasks, {row['samples']} samples")
        manifest = _manifest_problem(row)
        if manifest:
            problems.append(f"{label}: {manifest}")
    return Outcome.from_problems(problems, rows=len(scores), newest_checkpoint_rows=len(mine))


def selection_consistent(asset: str, check: CheckInput) -> Outcome:
    """The newest decision, recomputed from the per-problem outcomes it stored: the same pass and discordant counts,
    the same McNemar p-value and the same decision (eval/paired.py, independently of the figures written beside
    them); the next teacher is the chosen model; the decision is about the newest checkpoint; and the decision file
    the `teacher` asset reads says the same."""
    from eval.paired import compare_paired

    row = stored_table(asset, check).row(-1, named=True)
    problems = []
    outcomes = json.loads(row["problems"] or "[]")
    single = row["mode"] == "single"
    student = [o["student_solved_at"] == 0 if single else o["student_solved_at"] is not None for o in outcomes]
    teacher = [o["teacher_solved_at"] == 0 if single else o["teacher_solved_at"] is not None for o in outcomes]
    again = compare_paired(student, teacher, row["confidence"] or 0.95)
    stored = (row["test_rows"], row["student_passes"], row["teacher_passes"], row["student_only"],
              row["teacher_only"], row["decision"])
    recomputed = (again.problems, again.student_passes, again.teacher_passes, again.student_only,
                  again.teacher_only, again.decision)
    if stored != recomputed:
        problems.append(f"stored (test rows, passes, discordant, decision) {stored} but its per-problem outcomes give "
                        f"{recomputed}")
    elif not math.isclose(row["p_value"], again.p_value, rel_tol=1e-9):
        problems.append(f"p_value={row['p_value']} but the outcomes give {again.p_value}")
    if row["selected"] != ("student" if row["decision"] == "student" else "teacher"):
        problems.append(f"decision={row['decision']!r} but selected={row['selected']!r}")
    elif row["next_teacher"] != row[row["selected"]]:
        problems.append(f"selected={row['selected']} but next_teacher={row['next_teacher']}")
    newest = newest_checkpoint(check)["checkpoint"]
    if row["student"] != newest:
        problems.append(f"student={row['student']} is not the newest checkpoint {newest}")
    decision = check.home.teacher_selection
    if not decision.is_file():
        problems.append(f"{decision} is missing")
    else:
        written = json.loads(decision.read_text())
        differs = sorted(k for k in ("round", "decision", "selected", "next_teacher", "student", "teacher")
                         if written.get(k) != row[k])
        if differs:
            problems.append(f"{decision} disagrees with the table on {', '.join(differs)}")
    return Outcome.from_problems(problems, selected=str(row["selected"]), decision=str(row["decision"]))


def teacher_lineage_consistent(asset: str, check: CheckInput) -> Outcome:
    """The teachers table: one row per round from 1 without gaps; a model keeps since_round while it stays; every
    change of teacher rests on a recorded decision for the student; a student teacher's GGUF (or checkpoint) exists
    and its checkpoint still has the recorded model files; and teacher.json is the newest row."""
    from resources.files import model_files_sha256
    from resources.teacher_state import read_teacher_state

    rows = stored_table(asset, check).sort("round").to_dicts()
    problems = []
    rounds = [r["round"] for r in rows]
    if rounds != list(range(1, len(rows) + 1)):
        problems.append(f"rounds {rounds}: not 1..{len(rows)} without gaps")
    decisions = stored_table(TEACHER_SELECTION, CheckInput(check.home, None)) if len(rows) > 1 else None
    for before, after in zip(rows, rows[1:]):
        changed = after["model"] != before["model"]
        if not changed and after["since_round"] != before["since_round"]:
            problems.append(f"round {after['round']}: {after['model']} stayed but since_round moved to "
                            f"{after['since_round']}")
        decided = decisions.filter(decisions["round"] == before["round"]) if decisions is not None else None
        if changed and (decided is None or not len(decided) or decided["decision"][-1] != "student"):
            problems.append(f"round {after['round']}: the teacher changed to {after['model']} without a recorded "
                            f"student decision for round {before['round']}")
    newest = rows[-1] if rows else None
    if newest and newest["role"] == "student":
        served = newest["gguf"] if newest["serving"] == "gguf" else newest["checkpoint"]
        if not served or not Path(served).exists():
            problems.append(f"round {newest['round']}: the teacher's {newest['serving']} {served} is gone")
        folder = Path(newest["checkpoint"] or "")
        if folder.is_dir() and model_files_sha256(folder) != newest["checkpoint_sha256"]:
            problems.append(f"round {newest['round']}: {folder}'s model files changed since it was promoted")
    state = read_teacher_state(check.home)
    if newest and (state is None or state.as_dict() != {k: newest[k] for k in state.as_dict()}):
        problems.append(f"{check.home.teacher_state} is not the table's newest row (round {newest['round']})")
    return Outcome.from_problems(problems, rounds=len(rows), teacher=str(newest["model"]) if newest else "")


def staged_folder_valid(asset: str, check: CheckInput) -> Outcome:
    """The folder the newest hub_dataset / hub_model materialization staged (or uploaded from) validates as a Hub
    dataset or model repository."""
    from resources.hub_validate import validate_dataset_folder, validate_model_folder

    staged = metadata_value(latest_materialization(asset, check), "staged")
    if staged is None:
        raise CheckSkipped(f"{asset} has no recorded materialization with a staged folder")
    validate = validate_dataset_folder if asset.endswith("dataset") else validate_model_folder
    return Outcome.from_problems([f"{staged}: {p}" for p in validate(Path(staged))], staged=str(staged))
