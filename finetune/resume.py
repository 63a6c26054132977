"""Resuming a run from the checkpoint-N folders in its output folder, and refusing those of another recipe or dataset.

    checkpoint = find_checkpoint(output_dir, resume)    # resume: None (newest if any), True (one must exist) or a path
    record_run(output_dir, {"recipe_fingerprint": ..., "dataset_fingerprint": ...}, checkpoint)   # ResumeError
    finished_summary(output_dir, checkpoint, max_steps)  # the summary of a run already at its last step, else None
    checkpoint_tokens(checkpoint)                        # input tokens seen up to that checkpoint

The output folder's crucible_run.json records the recipe and dataset its checkpoints come from.
"""

from __future__ import annotations

import json
from pathlib import Path

from finetune.summary import SUMMARY_FILE

RUN_FILE = "crucible_run.json"  # the recipe and dataset the checkpoints in an output folder come from
STATE_FILE = "trainer_state.json"  # transformers' own, in each checkpoint-N folder


class ResumeError(ValueError):
    """No checkpoint where --resume asked for one, or the output folder's checkpoints come from another recipe or
    dataset (a --base override changes the recipe). One line."""


def find_checkpoint(output_dir: Path, resume: str | bool | None) -> str | None:
    """The checkpoint to resume from: `resume` if a path, else the newest in output_dir (required if resume is True)."""
    from transformers.trainer_utils import get_last_checkpoint

    if isinstance(resume, str):
        if not Path(resume).is_dir():
            raise ResumeError(f"--resume {resume}: no such checkpoint folder")
        return resume
    last = get_last_checkpoint(str(output_dir)) if output_dir.is_dir() else None
    if resume is True and last is None:
        raise ResumeError(f"--resume: no checkpoint-N folder in {output_dir}")
    return last


def record_run(output_dir: Path, run_info: dict, checkpoint: str | None) -> None:
    """Write run_info (the recipe and dataset fingerprints) to the output folder's RUN_FILE, after checking that the
    checkpoint to resume from was made with the same ones."""
    run_file = output_dir / RUN_FILE
    if checkpoint and run_file.is_file():
        before = json.loads(run_file.read_text())
        for key in ("recipe_fingerprint", "dataset_fingerprint"):
            if before.get(key) != run_info[key]:
                raise ResumeError(f"output {output_dir} has checkpoints with {key} {before.get(key)!r}, this run has "
                                  f"{run_info[key]!r}: give another --output or remove that folder")
    output_dir.mkdir(parents=True, exist_ok=True)
    run_file.write_text(json.dumps(run_info, indent=2) + "\n")


def finished_summary(output_dir: Path, checkpoint: str | None, max_steps: int) -> dict | None:
    """The summary of a run that already reached its last step, so that running it again changes nothing
    (transformers would otherwise take one more step when resuming from the final checkpoint)."""
    state_file = Path(checkpoint) / STATE_FILE if checkpoint else None
    summary_file = output_dir / SUMMARY_FILE
    if state_file is None or not state_file.is_file() or not summary_file.is_file():
        return None
    state = json.loads(state_file.read_text())
    target = max_steps if max_steps > 0 else state.get("max_steps", 0)
    summary = json.loads(summary_file.read_text())
    if state.get("global_step", 0) >= target > 0 and summary.get("global_step") == state["global_step"]:
        return summary
    return None


def checkpoint_tokens(checkpoint: str) -> int:
    """Input tokens seen up to `checkpoint` (0 when its trainer state is missing)."""
    state_file = Path(checkpoint) / STATE_FILE
    if state_file.is_file():
        return json.loads(state_file.read_text()).get("num_input_tokens_seen", 0)
    return 0
