"""The model card (finetune/model_card.py) from a training summary, without training: its front matter read back with
huggingface_hub (licence, base model, datasets, model-index results that round-trip), the evaluation section, and
the staged folder's validation."""

import json

import pytest
from huggingface_hub import ModelCard
from huggingface_hub.repocard_data import eval_results_to_model_index, model_index_to_eval_results

from finetune.model_card import (
    NOT_EVALUATED,
    checkpoint_card,
    eval_results,
    render_card,
    set_eval_results,
    set_eval_scores,
)
from resources.hub_validate import FROM_SCRATCH_TAG, validate_model_folder
from tests.hub_folders import training_summary as summary
from tests.hub_folders import write_model_folder

RESULTS = [
    {"benchmark": "humaneval", "mode": "single", "pass_at_1": 0.31234, "tasks": 164, "ci95_low": 0.24,
     "ci95_high": 0.38},
    {"benchmark": "mbpp", "mode": "exec_feedback", "pass_at_1": 0.4, "tasks": 20, "ci95_low": 0.2, "ci95_high": 0.6},
    {"benchmark": "some_private_suite", "mode": "single", "pass_at_1": 0.9, "tasks": 3},
]


def load(tmp_path, text: str) -> ModelCard:
    path = tmp_path / "README.md"
    path.write_text(text)
    return ModelCard.load(path)


def test_a_tiny_model_card_parses_back_with_licence_tags_and_no_base(tmp_path):
    card = load(tmp_path, render_card(summary()))
    data = card.data.to_dict()
    assert data["license"] == "apache-2.0" and "base_model" not in data and FROM_SCRATCH_TAG in data["tags"]
    assert data["library_name"] == "transformers" and data["pipeline_tag"] == "text-generation"
    assert "model-index" not in data and "datasets" not in data
    assert NOT_EVALUATED in card.text and "| learning_rate | 0.001 |" in card.text


def test_scores_become_a_model_index_that_round_trips(tmp_path):
    text = render_card(summary("cpu-smollm2", base_model="/models/SmolLM2-q4"), RESULTS,
                       dataset_id="me/crucible-sft", model_name="me/crucible-coder")
    card = load(tmp_path, text)
    data = card.data.to_dict()
    assert data["base_model"] == "HuggingFaceTB/SmolLM2-135M-Instruct" and data["license"] == "apache-2.0"
    assert data["datasets"] == ["me/crucible-sft"] and "lora" in data["tags"]
    name, results = model_index_to_eval_results(data["model-index"])
    assert name == "me/crucible-coder" and results == card.data.eval_results == eval_results(RESULTS)
    assert eval_results_to_model_index(name, results) == data["model-index"]
    humaneval, mbpp = results  # the unknown benchmark is left out
    assert (humaneval.task_type, humaneval.dataset_type, humaneval.dataset_split) == (
        "text-generation", "openai/openai_humaneval", "test")
    assert (humaneval.metric_type, humaneval.metric_value, humaneval.verified) == ("pass@1", 0.3123, False)
    # A run over the first 20 tasks only says so: it is not an MBPP score.
    assert mbpp.dataset_type == "google-research-datasets/mbpp" and mbpp.dataset_split == "test[:20]"
    assert mbpp.dataset_name == "MBPP (first 20 of 500 tasks)" and mbpp.metric_name == "pass@1 with execution feedback"
    assert "| HumanEval | single | 0.312 | 0.240–0.380 | 164 |" in card.text and NOT_EVALUATED not in card.text


@pytest.mark.parametrize("changes, base, licence", [
    ({"base_model": "Qwen/Qwen2.5-Coder-7B", "base_is_hub_id": True}, "Qwen/Qwen2.5-Coder-7B", "apache-2.0"),
    ({"base_model": "someone/coder-3b", "base_is_hub_id": True}, "someone/coder-3b", "unknown"),
    ({"base_model": "/cache/hub/models--org--coder/snapshots/0123abcd"}, "org/coder", "unknown"),
])
def test_base_model_and_licence_of_pretrained_bases(tmp_path, changes, base, licence):
    data = load(tmp_path, render_card(summary("magicoder-full", **changes))).data
    assert (data.base_model, data.license) == (base, licence) and FROM_SCRATCH_TAG not in data.tags


def test_a_local_base_gives_its_own_cards_licence_and_no_base_model(tmp_path):
    base = tmp_path / "my-base"
    base.mkdir()
    (base / "README.md").write_text("---\nlicense: mit\n---\n# my base\n")
    data = load(tmp_path, render_card(summary("magicoder-full", base_model=str(base)))).data
    assert data.license == "mit" and data.base_model is None


def test_a_hub_dataset_snapshot_is_the_cards_dataset(tmp_path):
    snapshot = "/cache/hub/datasets--me--crucible-sft/snapshots/" + "a" * 40
    card = load(tmp_path, render_card(summary(dataset=snapshot), dataset_id="other/repo"))
    assert card.data.datasets == ["me/crucible-sft"] and "`me/crucible-sft` (Hub dataset, commit `aaaaaaaaaaaa`)" \
        in card.text
    assert load(tmp_path, render_card(summary(), dataset_id="not a repo")).data.datasets is None


def test_the_staged_folder_of_a_rendered_card_validates(tmp_path):
    folder = write_model_folder(tmp_path / "m")
    (folder / "README.md").write_text(render_card(summary(), RESULTS, model_name="me/coder"))
    assert validate_model_folder(folder) == []
    (folder / "README.md").write_text(render_card(summary("magicoder-full", base_model="/nowhere")))
    assert [p for p in validate_model_folder(folder) if "base_model" in p] == [
        f"README.md: no base_model (the Hub id of the model fine-tuned; tag the card `{FROM_SCRATCH_TAG}` when "
        "there is none)"]


def test_set_eval_results_then_set_eval_scores(tmp_path):
    path = tmp_path / "README.md"
    path.write_text(render_card(summary()))
    set_eval_results(path, RESULTS[:1])
    card = ModelCard.load(path)
    assert card.data.eval_results == eval_results(RESULTS[:1]) and card.data.model_name == tmp_path.name
    assert card.data.license == "apache-2.0" and "| HumanEval | single |" in card.text
    set_eval_scores(path, {"humaneval pass@1": 0.125})
    card = ModelCard.load(path)
    assert "| humaneval pass@1 | 0.125 |" in card.text and card.data.eval_results == eval_results(RESULTS[:1])
    path.write_text("---\nlicense: mit\n---\n# no evaluation section\n")
    with pytest.raises(ValueError, match="no evaluation section to update"):
        set_eval_results(path, RESULTS)


def test_checkpoint_card_reads_the_training_summary(tmp_path):
    with pytest.raises(FileNotFoundError, match="no training summary"):
        checkpoint_card(tmp_path)
    (tmp_path / "training_summary.json").write_text(json.dumps(summary()))
    assert checkpoint_card(tmp_path, RESULTS, model_name="me/x") == render_card(summary(), RESULTS, None, "me/x")
