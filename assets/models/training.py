"""finetuned_checkpoint: the SFT dataset's release trained with a finetune/ recipe by `python -m finetune.train`,
launched through Dagster Pipes; one row per checkpoint in the store (path, recipe, base, dataset version, steps, loss,
tokens/s), the loss curve as a plot, and the model card the trainer writes into the checkpoint folder.

The trainer runs in a child process rather than in the run's process: torch's threads, memory and a possible CUDA
context end with it, a crash cannot take the run worker down, and the same command is what users run by hand. The
child reports through Pipes (finetune/pipes_report.py): its progress lines arrive in the run's log as they come, and
its checkpoint folder, summary and per-step losses arrive as the materialization it reports, which this asset reads.
The launcher is the `trainer` resource (a `dg.PipesClient`): a subprocess here (`local_trainer`); another Pipes
client (a Kubernetes pod, say) runs the same command elsewhere.
"""

import logging
import math
import sys
import time
from pathlib import Path

import dagster as dg
import polars as pl
from pydantic import Field

from assets.automation import GPU_TAG
from assets.keys import FINETUNED_CHECKPOINT, SFT_DATASET, TRAIN
from assets.plots import line_png, png_metadata
from assets.release.sft_dataset import release_folder
from assets.schemas import CHECKPOINTS, frame
from finetune.pipes_report import ERROR_PREFIX
from resources.store import ParquetIOManager, read_table

LOSS_CHECK = "loss_is_finite"
REPO_ROOT = Path(__file__).resolve().parents[2]  # where `python -m finetune.train` resolves


def local_trainer() -> dg.PipesSubprocessClient:
    """The default `trainer` resource: the trainer as a child process of the run, started in the repository root."""
    return dg.PipesSubprocessClient(cwd=str(REPO_ROOT))


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


def reported_run(invocation) -> tuple[Path, dict, list[dict]]:
    """(checkpoint folder, summary, [{"step", "loss"}]) from the materialization the trainer reported through Pipes."""
    reported = [r for r in invocation.get_results(implicit_materializations=False)
                if isinstance(r, dg.MaterializeResult)]
    if not reported or "checkpoint" not in (reported[-1].metadata or {}):
        raise dg.Failure("the trainer exited without reporting its checkpoint through Dagster Pipes; is "
                         "finetune/train.py's Pipes report (finetune/pipes_report.py) in place?")
    metadata = reported[-1].metadata
    return Path(metadata["checkpoint"].value), metadata["summary"].value, metadata["losses"].value


def trainer_error(context: dg.AssetExecutionContext) -> str | None:
    """The last one-line error the trainer logged through Pipes in this step, if any."""
    step = context.op_execution_context.get_step_execution_context().step.key
    for entry in reversed(context.instance.all_logs(context.run.run_id)):
        message = entry.user_message or ""
        if entry.step_key == step and entry.level >= logging.ERROR and message.startswith(ERROR_PREFIX):
            return message.removeprefix(ERROR_PREFIX)
    return None


def checkpoint_row(summary: dict, folder: Path, dataset_version: str) -> dict:
    return {
        "checkpoint": str(folder), "model_name": summary.get("model_name"), "recipe": summary["recipe"]["name"],
        "recipe_fingerprint": summary.get("recipe_fingerprint"), "method": summary.get("method"),
        "base_model": summary.get("base_model"), "dataset_version": dataset_version,
        "dataset_fingerprint": summary.get("dataset_fingerprint"), "steps": summary.get("global_step"),
        "train_rows": summary.get("train_rows"), "final_loss": summary.get("final_loss"),
        "eval_loss": summary.get("eval_loss"), "tokens_seen": summary.get("tokens_seen"),
        "tokens_per_second": summary.get("tokens_per_second"), "wall_seconds": summary.get("wall_seconds"),
        "device": summary.get("device"), "precision": summary.get("precision"),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def json_safe(losses: list[dict]) -> list[dict]:
    """The losses with NaN and infinities as text ("nan", "inf"), which strict JSON readers such as the UI accept."""
    return [{**e, "loss": e["loss"] if finite(e["loss"]) else str(e["loss"])} for e in losses]


@dg.asset(ins={"sft": dg.AssetIn(SFT_DATASET)}, group_name=TRAIN, op_tags=GPU_TAG,
          check_specs=[dg.AssetCheckSpec(LOSS_CHECK, asset=FINETUNED_CHECKPOINT,
                                         description="Every training loss the trainer reported is a finite number.")])
def finetuned_checkpoint(context: dg.AssetExecutionContext, config: TrainConfig, sft: pl.DataFrame,
                         trainer: dg.ResourceParam[dg.PipesClient], io_manager: dg.ResourceParam[ParquetIOManager]):
    """A model fine-tuned on the SFT dataset's train split with a finetune/ recipe (TRL SFTTrainer)."""
    if not len(sft) or not (sft["split"] == "train").any():
        raise dg.Failure("sft_dataset has no train rows: nothing to train on; generate and curate dialogues first")
    home = io_manager.paths
    version = sft["dataset_version"][0]
    command = train_command(config, release_folder(context.instance, version, home))
    context.log.info("training: " + " ".join(command))
    # The child's configuration is this run's home, as when it is run by hand with CRUCIBLE_HOME set.
    env = {"CRUCIBLE_HOME": str(home.root.resolve()), "PYTHONUNBUFFERED": "1"}
    try:
        invocation = trainer.run(context=context, command=command, env=env)
    except Exception as error:  # the client's own error only says the exit status; the trainer logged the cause
        raise dg.Failure(f"training with recipe {config.recipe} failed: {trainer_error(context) or error}") from error
    folder, summary, losses = reported_run(invocation)
    row = checkpoint_row(summary, folder, version)
    plot = png_metadata(line_png([e["step"] for e in losses], [e["loss"] for e in losses],
                                 f"{row['recipe']}: training loss", "step", "loss"),
                        home.reports / FINETUNED_CHECKPOINT / f"{folder.name}_loss.png", "loss")
    # The table keeps every training run (newest last); retraining into the same folder replaces its row.
    earlier = read_table(FINETUNED_CHECKPOINT, home=home)
    earlier = earlier.filter(pl.col("checkpoint") != str(folder)) if len(earlier) else frame([], CHECKPOINTS)
    table = pl.concat([frame(earlier.to_dicts(), CHECKPOINTS), frame([row], CHECKPOINTS)])
    yield dg.Output(table, metadata={
        "runs": len(table), "checkpoint": dg.MetadataValue.path(str(folder)),
        "model_card": dg.MetadataValue.path(str(folder / "README.md")), "recipe": row["recipe"],
        "base_model": str(row["base_model"]), "dataset_version": version, "steps": row["steps"],
        "final_loss": row["final_loss"], "losses": dg.MetadataValue.json(json_safe(losses)),
        "tokens_per_second": row["tokens_per_second"], "wall_seconds": row["wall_seconds"],
        "device": str(row["device"]), "loss_curve": plot,
    })
    bad = [e for e in losses if not finite(e["loss"])]
    yield dg.AssetCheckResult(check_name=LOSS_CHECK, passed=bool(losses) and not bad,
                              severity=dg.AssetCheckSeverity.ERROR,
                              metadata={"reported_losses": len(losses),
                                        "not_finite": dg.MetadataValue.json(json_safe(bad[:10]))})
