"""finetuned_checkpoint and hub_model materialized on a small SFT dataset in the pipeline's format, training the
cpu-tiny recipe through Dagster Pipes for a few steps; and the asset's side of Pipes with small scripts standing in
for the trainer (a non-finite loss, no report, a crash)."""

import json
import sys
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from huggingface_hub import ModelCard

from assets.models.evaluation import benchmark_scores
from assets.models.training import LOSS_CHECK, finetuned_checkpoint, local_trainer
from assets.release.publish import hub_model
from assets.release.sft_dataset import sft_dataset
from assets.schemas import CHECKPOINTS
from resources.hub import HubPublisher
from resources.llm import TeacherLLM
from resources.sandbox import Sandbox
from resources.store import ParquetIOManager, read_table
from tests.conftest import shared_embedder
from tests.dialogue_rows import write_dialogues


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("CRUCIBLE_HOME", str(tmp_path / "home"))
    write_dialogues("stdlib", range(16))
    return tmp_path / "home"


def materialize(instance, assets, train_config: dict, raise_on_error=True, trainer=None):
    """Materialize `assets`, loading sft_dataset (and the checkpoint table) from the store."""
    return dg.materialize([sft_dataset, finetuned_checkpoint, benchmark_scores, hub_model], selection=assets,
                          instance=instance, raise_on_error=raise_on_error,
                          resources={"io_manager": ParquetIOManager(), "hub": HubPublisher(),
                                     "embedder": shared_embedder(),
                                     "trainer": trainer or local_trainer(),
                                     # benchmark_scores is not selected here; its resources are declared, not used
                                     "sandbox": Sandbox(), "teacher": TeacherLLM(base_url="http://127.0.0.1:9/v1")},
                          run_config={"ops": {"finetuned_checkpoint": {"config": train_config}}})


@pytest.mark.slow
def test_training_asset_streams_progress_records_the_run_and_stages_the_model(home):
    instance = dg.DagsterInstance.ephemeral()
    assert dg.materialize([sft_dataset], instance=instance,
                          resources={"io_manager": ParquetIOManager(), "hub": HubPublisher(),
                                     "embedder": shared_embedder()}).success
    result = materialize(instance, [finetuned_checkpoint, hub_model], {"recipe": "cpu-tiny", "max_steps": 3})
    assert result.success
    assert [c.passed for c in result.get_asset_check_evaluations()] == [True]

    table = read_table("finetuned_checkpoint")
    assert table.schema == pl.Schema(CHECKPOINTS) and len(table) == 1
    row = table.row(0, named=True)
    assert row["recipe"] == "cpu-tiny" and row["steps"] == 3 and row["final_loss"] > 0
    assert row["dataset_version"] == read_table("sft_dataset")["dataset_version"][0]
    assert row["tokens_per_second"] > 0

    # The trainer opened Dagster Pipes, and its progress lines reached the run's log through it as they came.
    logs = [e.user_message for e in instance.all_logs(result.run_id) if e.user_message]
    assert "[pipes] external process successfully opened dagster pipes." in logs
    assert sum(m.startswith("[train] step=") for m in logs) == 3 and any(m.startswith("[save] model ->") for m in logs)
    meta = result.asset_materializations_for_node("finetuned_checkpoint")[0].metadata
    assert "data:image/png;base64," in meta["loss_curve"].value and meta["steps"].value == 3

    # What the asset recorded is what the child reported: its checkpoint folder and the loss of every logged step,
    # the same numbers the trainer wrote into that folder's summary.
    written = json.loads((Path(row["checkpoint"]) / "training_summary.json").read_text())
    default_output = (home / "checkpoints" / row["model_name"]).resolve()
    assert Path(meta["checkpoint"].value) == Path(row["checkpoint"]) == default_output
    assert meta["losses"].value == [{"step": e["step"], "loss": e["loss"]} for e in written["loss_history"]]
    assert [e["step"] for e in meta["losses"].value] == [1, 2, 3]
    assert row["final_loss"] == meta["final_loss"].value == written["loss_history"][-1]["loss"]
    check = result.get_asset_check_evaluations()[0]
    assert check.check_name == LOSS_CHECK and check.metadata["reported_losses"].value == 3

    folder = home / "hub" / "models" / row["model_name"]
    card = ModelCard.load(folder / "README.md")
    assert "cpu-tiny" in card.text and row["dataset_fingerprint"][:12] in card.text
    assert (folder / "config.json").is_file() and not list(folder.glob("checkpoint-*"))
    summary = json.loads((folder / "training_summary.json").read_text())
    assert summary["global_step"] == 3

    # A second run with another step count adds a row; the newest is last.
    again = materialize(instance, [finetuned_checkpoint], {"recipe": "cpu-tiny", "max_steps": 4,
                                                           "output": str(home / "ckpt-4")})
    assert again.success
    table = read_table("finetuned_checkpoint")
    assert table["steps"].to_list() == [3, 4] and table["checkpoint"][-1] == str(home / "ckpt-4")


def test_a_bad_recipe_fails_the_asset_with_the_trainers_one_line(home):
    instance = dg.DagsterInstance.ephemeral()
    assert dg.materialize([sft_dataset], instance=instance,
                          resources={"io_manager": ParquetIOManager(), "hub": HubPublisher(),
                                     "embedder": shared_embedder()}).success
    result = materialize(instance, [finetuned_checkpoint], {"recipe": "no-such-recipe"}, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    message = failure.step_failure_data.error.message
    assert "training with recipe no-such-recipe failed" in message and "no-such-recipe" in message.split("failed:")[1]


# Run under the asset's Pipes session in place of `python -m finetune.train`: reports the run summary given as its first
# argument through finetune/pipes_report.py ("raise" instead: crashes after a progress line; "silent": reports nothing).
STAND_IN = """
import json, os, sys
from finetune.pipes_report import trainer_report

with trainer_report() as report:
    report.log(f"[setup] stand-in trainer home={os.environ['CRUCIBLE_HOME']}")
    if sys.argv[1] == "raise":
        raise MemoryError("CUDA out of memory while allocating 2.00 GiB")
    if sys.argv[1] != "silent":
        report.finished(json.loads(sys.argv[1]))
"""


class StandInTrainer(dg.PipesSubprocessClient):
    """local_trainer() running the STAND_IN script with `argument` instead of the trainer's command."""

    def __init__(self, script: Path, argument: str):
        super().__init__(cwd=str(local_trainer().cwd))
        self.script, self.argument = script, argument

    def run(self, *, context, command, env=None, extras=None, cwd=None):
        assert command[1:3] == ["-m", "finetune.train"]
        return super().run(context=context, command=[sys.executable, str(self.script), self.argument], env=env,
                           extras=extras, cwd=cwd)


@pytest.fixture
def stand_in(home, tmp_path):
    """(instance with sft_dataset materialized, factory of StandInTrainer)."""
    instance = dg.DagsterInstance.ephemeral()
    assert dg.materialize([sft_dataset], instance=instance,
                          resources={"io_manager": ParquetIOManager(), "hub": HubPublisher(),
                                     "embedder": shared_embedder()}).success
    script = tmp_path / "stand_in.py"
    script.write_text(STAND_IN)
    return instance, lambda argument: StandInTrainer(script, argument)


def reported_summary(folder: Path, losses: list[float]) -> dict:
    history = [{"step": i + 1, "loss": loss, "learning_rate": 1e-3} for i, loss in enumerate(losses)]
    return {"output_dir": str(folder), "model_name": folder.name, "recipe": {"name": "cpu-tiny"},
            "recipe_fingerprint": "f" * 64, "method": "full", "base_model": "/models/tiny", "global_step": len(losses),
            "loss_history": history, "final_loss": losses[-1], "train_rows": 12, "tokens_seen": 900,
            "tokens_per_second": 450.0, "wall_seconds": 2.0, "device": "cpu", "precision": "fp32"}


def test_a_non_finite_reported_loss_fails_the_loss_check(home, stand_in, tmp_path):
    instance, trainer = stand_in
    folder = tmp_path / "ckpt"
    summary = reported_summary(folder, [2.5, float("nan"), float("inf")])
    result = materialize(instance, [finetuned_checkpoint], {"recipe": "cpu-tiny"},
                         trainer=trainer(json.dumps(summary)))
    assert result.success
    check = result.get_asset_check_evaluations()[0]
    assert check.check_name == LOSS_CHECK and not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert check.metadata["not_finite"].value == [{"step": 2, "loss": "nan"}, {"step": 3, "loss": "inf"}]
    # The row and the metadata come from the report, not from files: the stand-in wrote none.
    row = read_table("finetuned_checkpoint").row(0, named=True)
    assert row["checkpoint"] == str(folder) and row["steps"] == 3 and row["tokens_per_second"] == 450.0
    assert row["final_loss"] == float("inf")
    meta = result.asset_materializations_for_node("finetuned_checkpoint")[0].metadata
    assert [e["loss"] for e in meta["losses"].value] == [2.5, "nan", "inf"]
    # The child ran with this run's home as its CRUCIBLE_HOME.
    logs = [e.user_message for e in instance.all_logs(result.run_id)]
    assert f"[setup] stand-in trainer home={home.resolve()}" in logs

    finite = materialize(instance, [finetuned_checkpoint], {"recipe": "cpu-tiny"},
                         trainer=trainer(json.dumps(reported_summary(folder, [2.5, 2.0]))))
    assert finite.get_asset_check_evaluations()[0].passed
    assert read_table("finetuned_checkpoint")["steps"].to_list() == [2]  # same folder: its row replaced


@pytest.mark.parametrize("argument,cause", [
    ("raise", "MemoryError: CUDA out of memory while allocating 2.00 GiB"),
    ("silent", "the trainer exited without reporting its checkpoint through Dagster Pipes"),
])
def test_a_trainer_that_crashes_or_reports_nothing_fails_with_one_line(home, stand_in, argument, cause):
    instance, trainer = stand_in
    result = materialize(instance, [finetuned_checkpoint], {"recipe": "cpu-tiny"}, raise_on_error=False,
                         trainer=trainer(argument))
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert cause in failure.step_failure_data.error.message
    assert len(read_table("finetuned_checkpoint")) == 0
