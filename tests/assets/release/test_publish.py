"""hub_dataset and hub_model (assets/release/publish.py) materialized: a release with mixed seed licences stages a
valid card with LICENSES.md and is tagged by its version; the model is published with a card whose model-index holds
the checkpoint's own benchmark scores — offline and against the local Hub stub."""

import json

import dagster as dg
import pytest
from huggingface_hub import DatasetCard, ModelCard

from assets.release.card import LICENSES_FILE, MIXED_LICENSE_NAME
from assets.release.publish import checkpoint_results, hub_dataset, hub_model
from assets.release.sft_dataset import SftConfig, sft_dataset
from assets.schemas import CHECKPOINTS, SCORES, frame
from resources.home import Home
from resources.hub import HubPublisher, read_tags
from resources.hub_validate import validate_dataset_folder, validate_model_folder
from resources.store import ParquetIOManager, read_table, table_path, write_table
from tests.conftest import shared_embedder
from tests.dialogue_rows import write_dialogues
from tests.hub_folders import training_summary, write_model_folder
from tests.hub_stub_server import HubStub


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("CRUCIBLE_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def publish_dataset(hub: HubPublisher):
    return dg.materialize([sft_dataset, hub_dataset], instance=dg.DagsterInstance.ephemeral(),
                          resources={"io_manager": ParquetIOManager(), "hub": hub, "embedder": shared_embedder()},
                          run_config={"ops": {"sft_dataset": {"config": SftConfig().model_dump()}}})


def test_mixed_seed_licences_stage_a_valid_card_and_a_tagged_version(home):
    write_dialogues("stdlib", range(8))  # PSF-2.0: not a Hub licence id
    write_dialogues("mylib", range(100, 103))  # MIT
    assert publish_dataset(HubPublisher()).success
    version = read_table("sft_dataset")["dataset_version"][0]
    staged = home / "hub" / "datasets" / "crucible-code-feedback"
    card = DatasetCard.load(staged / "README.md").data.to_dict()
    assert (card["license"], card["license_name"], card["license_link"]) == ("other", MIXED_LICENSE_NAME,
                                                                            LICENSES_FILE)
    licences = (staged / LICENSES_FILE).read_text()
    assert "| `PSF-2.0` | no (`other`) | 8 | stdlib (8) |" in licences and "| `MIT` | yes | 3 | mylib (3) |" in licences
    assert validate_dataset_folder(staged) == []
    tags = read_tags("dataset", "crucible-code-feedback", Home.from_env())
    assert list(tags) == [f"v-{version}"] and tags[f"v-{version}"]["files"]["README.md"]


def test_the_upload_is_tagged_with_the_dataset_version(home):
    write_dialogues("mylib", range(100, 106))
    with HubStub() as stub:
        result = publish_dataset(HubPublisher(token="hf_t", dataset_repo="me/sft", endpoint=stub.url))
        assert result.success
        version = read_table("sft_dataset")["dataset_version"][0]
        meta = result.asset_materializations_for_node("hub_dataset")[0].metadata
        assert meta["tag"].value == f"v-{version}"
        assert stub.tag_names("me/sft", "dataset") == {f"v-{version}": meta["commit"].value}
        files = stub.files("me/sft", "dataset", revision=f"v-{version}")
    assert DatasetCard(files["README.md"].decode()).data.license == "mit" and LICENSES_FILE in files


SCORE = {"model_sha256": "x", "backend": "transformers", "ci95_low": 0.1, "ci95_high": 0.5, "samples": 1,
         "pass_at_1_by_round": "[]", "fingerprint": "fp", "manifest": "{}", "dataset_version": "dv"}


def store_checkpoint(home, folder) -> None:
    summary = training_summary("cpu-tiny", model_name="coder-1")
    (folder / "training_summary.json").write_text(json.dumps(summary))
    write_table(frame([{"checkpoint": str(folder), "model_name": "coder-1", "recipe": "cpu-tiny",
                        "dataset_version": "dv", "base_model": summary["base_model"], "method": "full"}], CHECKPOINTS),
                table_path("finetuned_checkpoint"))
    scores = [
        {**SCORE, "model_role": "checkpoint", "model": str(folder), "checkpoint": str(folder), "benchmark": "humaneval",
         "mode": "single", "pass_at_1": 0.2, "tasks": 164, "created_at": "2025-01-01T00:00:00"},
        {**SCORE, "model_role": "checkpoint", "model": str(folder), "checkpoint": str(folder), "benchmark": "humaneval",
         "mode": "single", "pass_at_1": 0.25, "tasks": 164, "created_at": "2025-01-02T00:00:00"},
        {**SCORE, "model_role": "teacher", "model": "bundled", "checkpoint": str(folder), "benchmark": "humaneval",
         "mode": "single", "pass_at_1": 0.9, "tasks": 164, "created_at": "2025-01-02T00:00:00"},
        {**SCORE, "model_role": "checkpoint", "model": "/older", "checkpoint": "/older", "benchmark": "mbpp",
         "mode": "single", "pass_at_1": 0.7, "tasks": 500, "created_at": "2025-01-02T00:00:00"},
    ]
    write_table(frame(scores, SCORES), table_path("benchmark_scores"))


def test_checkpoint_results_keep_the_newest_own_row_per_benchmark_and_mode(home, tmp_path):
    store_checkpoint(home, write_model_folder(tmp_path / "ckpt"))
    [row] = checkpoint_results(read_table("benchmark_scores"), str(tmp_path / "ckpt"))
    assert (row["pass_at_1"], row["model_role"]) == (0.25, "checkpoint")


def test_hub_model_publishes_a_card_with_the_checkpoints_scores(home, tmp_path):
    folder = write_model_folder(tmp_path / "ckpt")
    store_checkpoint(home, folder)
    own_card = (folder / "README.md").read_text()
    with HubStub() as stub:
        hub = HubPublisher(token="hf_t", model_repo="me/coder", dataset_repo="me/sft", endpoint=stub.url)
        result = dg.materialize([hub_model, dg.AssetSpec("finetuned_checkpoint")],
                                resources={"io_manager": ParquetIOManager(), "hub": hub, "embedder": shared_embedder()},
                                instance=dg.DagsterInstance.ephemeral())
        assert result.success
        assert stub.tag_names("me/coder") == {"v-coder-1": stub.commits[-1]["oid"]}
        uploaded = ModelCard(stub.files("me/coder")["README.md"].decode())
    data = uploaded.data.to_dict()
    assert data["model-index"][0]["name"] == "me/coder" and data["datasets"] == ["me/sft"]
    [humaneval] = uploaded.data.eval_results
    assert (humaneval.dataset_type, humaneval.metric_type, humaneval.metric_value) == (
        "openai/openai_humaneval", "pass@1", 0.25)
    staged = home / "hub" / "models" / "coder-1"
    assert validate_model_folder(staged) == [] and (staged / "README.md").read_text() == str(uploaded)
    assert (folder / "README.md").read_text() == own_card  # the checkpoint's own card is left alone
    meta = result.asset_materializations_for_node("hub_model")[0].metadata
    assert meta["evaluation_results"].value == 1 and meta["tag"].value == "v-coder-1"
