"""finetuned_checkpoint and hub_model materialized on a small SFT dataset in the pipeline's format, training the
cpu-tiny recipe in a subprocess for a few steps."""

import json

import dagster as dg
import polars as pl
import pytest
from huggingface_hub import ModelCard

from assets.models.evaluation import benchmark_scores
from assets.models.training import finetuned_checkpoint
from assets.release.publish import hub_model
from assets.release.sft_dataset import sft_dataset
from assets.schemas import CHECKPOINTS
from resources.hub import HubPublisher
from resources.llm import TeacherLLM
from resources.sandbox import Sandbox
from resources.store import ParquetIOManager, read_table
from tests.dialogue_rows import write_dialogues


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("CRUCIBLE_HOME", str(tmp_path / "home"))
    write_dialogues("stdlib", range(16))
    return tmp_path / "home"


def materialize(instance, assets, train_config: dict, raise_on_error=True):
    """Materialize `assets`, loading sft_dataset (and the checkpoint table) from the store."""
    return dg.materialize([sft_dataset, finetuned_checkpoint, benchmark_scores, hub_model], selection=assets,
                          instance=instance, raise_on_error=raise_on_error,
                          resources={"io_manager": ParquetIOManager(), "hub": HubPublisher(),
                                     # benchmark_scores is not selected here; its resources are declared, not used
                                     "sandbox": Sandbox(), "teacher": TeacherLLM(base_url="http://127.0.0.1:9/v1")},
                          run_config={"ops": {"finetuned_checkpoint": {"config": train_config}}})


@pytest.mark.slow
def test_training_asset_streams_progress_records_the_run_and_stages_the_model(home):
    instance = dg.DagsterInstance.ephemeral()
    assert dg.materialize([sft_dataset], instance=instance,
                          resources={"io_manager": ParquetIOManager(), "hub": HubPublisher()}).success
    result = materialize(instance, [finetuned_checkpoint, hub_model], {"recipe": "cpu-tiny", "max_steps": 3})
    assert result.success
    assert [c.passed for c in result.get_asset_check_evaluations()] == [True]

    table = read_table("finetuned_checkpoint")
    assert table.schema == pl.Schema(CHECKPOINTS) and len(table) == 1
    row = table.row(0, named=True)
    assert row["recipe"] == "cpu-tiny" and row["steps"] == 3 and row["final_loss"] > 0
    assert row["dataset_version"] == read_table("sft_dataset")["dataset_version"][0]
    assert row["tokens_per_second"] > 0

    # The trainer's progress lines reached the run's log as they came.
    logs = [e.message for e in instance.all_logs(result.run_id) if e.user_message]
    assert sum("[train] step=" in m for m in logs) == 3 and any("[save] model ->" in m for m in logs)
    meta = result.asset_materializations_for_node("finetuned_checkpoint")[0].metadata
    assert "data:image/png;base64," in meta["loss_curve"].value and meta["steps"].value == 3

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
                          resources={"io_manager": ParquetIOManager(), "hub": HubPublisher()}).success
    result = materialize(instance, [finetuned_checkpoint], {"recipe": "no-such-recipe"}, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    message = failure.step_failure_data.error.message
    assert "training with recipe no-such-recipe failed" in message and "no-such-recipe" in message.split("failed:")[1]
