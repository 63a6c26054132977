"""Checks on what the model stages stored: the newest checkpoint's folder is complete and its loss finite, its
scores are present with a manifest and a sane interval, the stored teacher decision agrees with itself and with the
decision file the next round reads, and the staged Hub folders validate."""

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
from assets.keys import FINETUNED_CHECKPOINT

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
    """The newest decision: a known choice, the next teacher is the chosen model, rates in [0, 1] (absent only
    without a test split, where the teacher stays), about the newest checkpoint, and the decision file the next round
    reads says the same."""
    row = stored_table(asset, check).row(-1, named=True)
    problems = []
    if row["selected"] not in ("student", "teacher"):
        problems.append(f"selected={row['selected']!r}: neither student nor teacher")
    elif row["next_teacher"] != row[row["selected"]]:
        problems.append(f"selected={row['selected']} but next_teacher={row['next_teacher']}")
    rates = (row["student_pass_rate"], row["teacher_pass_rate"])
    if row["test_rows"]:
        if any(r is None or not 0 <= r <= 1 for r in rates):
            problems.append(f"pass rates {rates} on {row['test_rows']} test rows: not both in [0, 1]")
    elif row["selected"] != "teacher":
        problems.append("no test rows, yet the student was selected")
    newest = newest_checkpoint(check)["checkpoint"]
    if row["student"] != newest:
        problems.append(f"student={row['student']} is not the newest checkpoint {newest}")
    decision = check.home.teacher_selection
    if not decision.is_file():
        problems.append(f"{decision} is missing")
    else:
        written = json.loads(decision.read_text())
        differs = sorted(k for k in ("selected", "next_teacher", "student", "teacher") if written.get(k) != row[k])
        if differs:
            problems.append(f"{decision} disagrees with the table on {', '.join(differs)}")
    return Outcome.from_problems(problems, selected=str(row["selected"]))


def staged_folder_valid(asset: str, check: CheckInput) -> Outcome:
    """The folder the newest hub_dataset / hub_model materialization staged (or uploaded from) validates as a Hub
    dataset or model repository."""
    from resources.hub_validate import validate_dataset_folder, validate_model_folder

    staged = metadata_value(latest_materialization(asset, check), "staged")
    if staged is None:
        raise CheckSkipped(f"{asset} has no recorded materialization with a staged folder")
    validate = validate_dataset_folder if asset.endswith("dataset") else validate_model_folder
    return Outcome.from_problems([f"{staged}: {p}" for p in validate(Path(staged))], staged=str(staged))
