"""finetuned_checkpoint: the SFT dataset's release trained with a finetune/ recipe, as a subprocess whose progress lines
stream into the Dagster log; one row per checkpoint in the store (path, recipe, base, dataset version, steps, loss,
tokens/s), the loss curve as a plot, and the model card the trainer writes into the checkpoint folder.

The training runs in a child process (`python -m finetune.train`) rather than in the run's process: torch's threads,
memory and a possible CUDA context end with it, a crash cannot take the run worker down, and the same command is what
users run by hand.
"""

import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import dagster as dg
import polars as pl
from pydantic import Field

from assets.keys import FINETUNED_CHECKPOINT, SFT_DATASET, TRAIN
from assets.plots import line_png, png_metadata
from assets.release.sft_dataset import release_folder
from assets.schemas import CHECKPOINTS, frame
from finetune.summary import SUMMARY_FILE
from resources.home import Home
from resources.store import ParquetIOManager, read_table

GPU_TAG = {"crucible/gpu": "true"}
SAVED = re.compile(r"^\[save\] (?:merged )?model -> (.*)$")
DONE_OUTPUT = re.compile(r"^\[done\] .* output=(.*)$")


class TrainConfig(dg.Config):
    recipe: str = Field(default="cpu-smollm2", description="A recipe in finetune/recipes (name) or a YAML path.")
    max_steps: int | None = Field(default=None, description="Override the recipe's max_steps (a short run).")
    base: str | None = Field(default=None, description="Override the recipe's base model: a local folder or a hub "
                                                       "id.")
    output: str | None = Field(default=None, description="Checkpoint folder; default $CRUCIBLE_HOME/checkpoints/"
                                                         "<recipe>-<recipe fp>-<dataset fp>.")


def train_command(config: TrainConfig, dataset_dir: Path) -> list[str]:
    command = [sys.executable, "-m", "finetune.train", "--recipe", config.recipe, "--dataset", str(dataset_dir)]
    for flag, value in (("--max-steps", config.max_steps), ("--base", config.base), ("--output", config.output)):
        if value is not None:
            command += [flag, str(value)]
    return command


def run_training(command: list[str], log, cwd: Path, home: Home) -> tuple[int, list[str], Path | None]:
    """Run the trainer under `home` (its CRUCIBLE_HOME: the subprocess's configuration), logging each of its
    `[stage] ...` lines as it comes; (exit code, stderr tail, output folder the trainer announced). The numbers
    themselves are read from training_summary.json afterwards."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "CRUCIBLE_HOME": str(home.root.resolve())}
    output = None
    with subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          bufsize=1) as proc:
        stderr_tail: list[str] = []

        def drain_stderr():
            for line in proc.stderr:
                stderr_tail.append(line.rstrip())
                del stderr_tail[:-40]

        reader = threading.Thread(target=drain_stderr, daemon=True)
        reader.start()
        for line in proc.stdout:
            line = line.rstrip()
            if line.startswith("["):  # [setup], [base], [train], [eval], [save], [done], [warn]
                log.info(line)
            saved = SAVED.match(line) or DONE_OUTPUT.search(line)
            if saved:
                output = Path(saved.group(1).strip())
        proc.wait()
        reader.join(timeout=10)
    return proc.returncode, stderr_tail, output


def checkpoint_row(summary: dict, folder: Path, dataset_version: str, config: TrainConfig) -> dict:
    losses = [e["loss"] for e in summary.get("loss_history", []) if "loss" in e]
    return {
        "checkpoint": str(folder), "model_name": summary.get("model_name"), "recipe": summary["recipe"]["name"],
        "recipe_fingerprint": summary.get("recipe_fingerprint"), "method": summary.get("method"),
        "base_model": summary.get("base_model"), "dataset_version": dataset_version,
        "dataset_fingerprint": summary.get("dataset_fingerprint"), "steps": summary.get("global_step"),
        "train_rows": summary.get("train_rows"), "final_loss": losses[-1] if losses else None,
        "eval_loss": summary.get("eval_loss"), "tokens_seen": summary.get("tokens_seen"),
        "tokens_per_second": summary.get("tokens_per_second"), "wall_seconds": summary.get("wall_seconds"),
        "device": summary.get("device"), "precision": summary.get("precision"),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


@dg.asset(ins={"sft": dg.AssetIn(SFT_DATASET)}, group_name=TRAIN, op_tags=GPU_TAG,
          check_specs=[dg.AssetCheckSpec("loss_is_finite", asset=FINETUNED_CHECKPOINT,
                                         description="Every logged training loss is a finite number.")])
def finetuned_checkpoint(context: dg.AssetExecutionContext, config: TrainConfig, sft: pl.DataFrame,
                         io_manager: dg.ResourceParam[ParquetIOManager]):
    """A model fine-tuned on the SFT dataset's train split with a finetune/ recipe (TRL SFTTrainer)."""
    if not len(sft) or not (sft["split"] == "train").any():
        raise dg.Failure("sft_dataset has no train rows: nothing to train on; generate and curate dialogues first")
    home = io_manager.paths
    version = sft["dataset_version"][0]
    dataset_dir = release_folder(context.instance, version, home)
    command = train_command(config, dataset_dir)
    context.log.info("training: " + " ".join(command))
    code, stderr_tail, announced = run_training(command, context.log, Path(__file__).resolve().parents[2], home)
    if code != 0:
        last = next((line for line in reversed(stderr_tail) if line.strip()), f"exit status {code}")
        raise dg.Failure(description=f"training with recipe {config.recipe} failed: {last}",
                         metadata={"stderr_tail": dg.MetadataValue.text("\n".join(stderr_tail))})
    folder = Path(config.output) if config.output else announced
    if folder is None or not (folder / SUMMARY_FILE).is_file():
        raise dg.Failure(f"the trainer finished but wrote no {SUMMARY_FILE} (output folder: {folder})")
    summary = json.loads((folder / SUMMARY_FILE).read_text())
    row = checkpoint_row(summary, folder, version, config)
    losses = [(e.get("step"), e["loss"]) for e in summary.get("loss_history", []) if "loss" in e]
    plot = png_metadata(line_png([s for s, _ in losses], [v for _, v in losses], f"{row['recipe']}: training loss",
                                 "step", "loss"),
                        home.reports / FINETUNED_CHECKPOINT / f"{folder.name}_loss.png", "loss")
    # The table keeps every training run (newest last); retraining into the same folder replaces its row.
    earlier = read_table(FINETUNED_CHECKPOINT, home=home)
    earlier = earlier.filter(pl.col("checkpoint") != str(folder)) if len(earlier) else frame([], CHECKPOINTS)
    table = pl.concat([frame(earlier.to_dicts(), CHECKPOINTS), frame([row], CHECKPOINTS)])
    yield dg.Output(table, metadata={"runs": len(table),
        "checkpoint": dg.MetadataValue.path(str(folder)),
        "model_card": dg.MetadataValue.path(str(folder / "README.md")),
        "recipe": row["recipe"], "base_model": str(row["base_model"]), "dataset_version": version,
        "steps": row["steps"], "final_loss": row["final_loss"], "tokens_per_second": row["tokens_per_second"],
        "wall_seconds": row["wall_seconds"], "device": str(row["device"]), "loss_curve": plot,
    })
    finite = all(isinstance(v, (int, float)) and v == v and abs(v) != float("inf") for _, v in losses)
    yield dg.AssetCheckResult(check_name="loss_is_finite", passed=bool(losses) and finite,
                              severity=dg.AssetCheckSeverity.ERROR, metadata={"logged_losses": len(losses)})
