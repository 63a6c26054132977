"""Staged-folder validation (resources/hub_validate.py): a valid dataset and model folder pass; each way of breaking
one (a removed file, a broken card, a bad licence, a truncated weight file, ...) is reported as one line naming it."""

import json
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from resources.hub import HubError, validate_model_folder
from resources.hub_validate import (
    FROM_SCRATCH_TAG,
    inspect_dataset_folder,
    license_problems,
    validate_dataset_folder,
)
from resources.hub_validate import validate_model_folder as model_problems
from tests.hub_folders import write_dataset_folder, write_model_folder


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_dataset_folder(tmp_path_factory.mktemp("valid") / "ds")


@pytest.fixture
def copy(dataset, tmp_path):
    return shutil.copytree(dataset, tmp_path / "copy")


def test_a_valid_dataset_folder_has_no_problems_and_reports_its_splits(dataset):
    report = inspect_dataset_folder(dataset)
    assert report.problems == [] and report.splits == {"train": 5, "test": 2}
    assert report.card["license"] == "mit"
    assert validate_dataset_folder(dataset) == []


def test_a_removed_data_file_is_named(copy):
    (copy / "data" / "test-00000-of-00001.parquet").unlink()
    problems = validate_dataset_folder(copy)
    assert len(problems) == 1 and "split 'test'" in problems[0] and "matches no file" in problems[0]


def test_a_broken_card_and_a_missing_card(copy):
    (copy / "README.md").write_text("---\nlicense: [unclosed\n---\n# x\n")
    [problem] = validate_dataset_folder(copy)
    assert problem.startswith("README.md: the card does not parse")
    (copy / "README.md").unlink()
    assert validate_dataset_folder(copy) == ["README.md: missing (the card the Hub shows, with its YAML front matter)"]


@pytest.mark.parametrize("meta, expected", [
    ({"license": "mit, psf-2.0"}, "is not one id (a comma-joined name?)"),
    ({"license": "psf-2.0"}, "'psf-2.0' is not a Hub licence id"),
    ({"license": "other"}, "needs a license_name"),
    ({"license": "other", "license_name": "Mixed, PSF", "license_link": "LICENSES.md"}, "is not an id"),
    ({"license": "other", "license_name": "mixed-seed-licenses", "license_link": "LICENSES.md"},
     "license_link 'LICENSES.md' is neither a URL nor a file"),
    ({"license": ["mit", "other"]}, "cannot be listed beside other ids"),
    ({"license": None}, "README.md: no license"),
    ({"task_categories": None}, "no task_categories"),
    ({"configs": None}, "names no configs"),
    ({"configs": [{"config_name": "default", "data_files": [{"split": "train", "path": "data/*.csv"}]}]},
     "matches no file"),
    ({"dataset_info": {"splits": [{"name": "train", "num_examples": 6}]}}, "has 6 rows; the files hold 5"),
    ({"dataset_info": {"splits": [{"name": "validation", "num_examples": 1}]}}, "names split 'validation'"),
])
def test_card_problems(tmp_path, meta, expected):
    folder = write_dataset_folder(tmp_path / "ds", **meta)
    problems = validate_dataset_folder(folder)
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize("meta", [
    {"license": ["mit", "apache-2.0"]},
    {"license": "unknown"},
    {"license": "other", "license_name": "psf-2.0", "license_link": "https://example.org/psf"},
])
def test_accepted_licences(tmp_path, meta):
    assert license_problems(meta, tmp_path) == []


def test_other_with_a_licence_file_passes(tmp_path):
    folder = write_dataset_folder(tmp_path / "ds", license="other", license_name="mixed-seed-licenses",
                                  license_link="LICENSES.md")
    (folder / "LICENSES.md").write_text("# Seed licences\n")
    assert validate_dataset_folder(folder) == []


def test_splits_without_the_expected_columns_or_chat_messages(copy):
    for path in (copy / "data").glob("*.parquet"):
        table = pq.read_table(path).drop_columns(["id"])
        index = table.schema.get_field_index("messages")
        pq.write_table(table.set_column(index, "messages", pa.array(["not a chat"] * table.num_rows)), path)
    problems = validate_dataset_folder(copy)
    assert any("split 'train': no column(s) id" in p for p in problems)
    assert any("split 'test': `messages` is" in p and "not a list of {role, content}" in p for p in problems)
    assert not any("no column" in p for p in validate_dataset_folder(copy, columns=["messages"]))


def test_splits_whose_columns_differ_do_not_load_together(copy):
    path = copy / "data" / "train-00000-of-00001.parquet"
    pq.write_table(pq.read_table(path).drop_columns(["solution"]), path)
    [problem] = validate_dataset_folder(copy)
    assert "`datasets` cannot load the splits of config 'default'" in problem


def test_a_data_file_that_is_not_parquet_fails_to_load(copy):
    (copy / "data" / "train-00000-of-00001.parquet").write_bytes(b"not parquet at all")
    problems = validate_dataset_folder(copy)
    assert any("`datasets` cannot load the splits of config 'default'" in p for p in problems)


# --- models ---------------------------------------------------------------------------------------------------------

def test_a_valid_model_folder(tmp_path):
    folder = write_model_folder(tmp_path / "m")
    assert model_problems(folder) == []
    assert validate_model_folder(folder)["model-index"][0]["name"] == "me/model"


def test_model_file_problems(tmp_path):
    folder = write_model_folder(tmp_path / "m")
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-4])
    [problem] = model_problems(folder)
    assert problem.startswith("model.safetensors:") and "truncated" in problem
    weights.unlink()
    (folder / "tokenizer.json").unlink()
    (folder / "tokenizer_config.json").unlink()
    (folder / "config.json").write_text("{not json")
    problems = model_problems(folder)
    assert any(p.startswith("config.json: does not parse") for p in problems)
    assert "no weights (*.safetensors)" in problems and any(p.startswith("no tokenizer files") for p in problems)
    with pytest.raises(HubError, match=r"config.json: does not parse.*\(and 2 more\)"):
        validate_model_folder(folder)


def test_a_sharded_model_names_its_missing_shard(tmp_path):
    folder = write_model_folder(tmp_path / "m")
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {
        "a": "model.safetensors", "b": "model-00002-of-00002.safetensors"}}))
    assert model_problems(folder) == ["model.safetensors.index.json: shard model-00002-of-00002.safetensors is "
                                      "missing"]


@pytest.mark.parametrize("card, expected", [
    ({"base_model": None}, "no base_model"),
    ({"base_model": "not a repo id!"}, "base_model 'not a repo id!' is not a Hub repo id"),
    ({"datasets": ["me/ok", "bad id!"]}, "datasets entry 'bad id!' is not a Hub repo id"),
    ({"license": ["mit", "apache-2.0"]}, "a model card takes one licence id"),
    ({"license": "mit,apache-2.0"}, "comma-joined"),
])
def test_model_card_problems(tmp_path, card, expected):
    problems = model_problems(write_model_folder(tmp_path / "m", **card))
    assert any(expected in p for p in problems), problems


def test_a_model_trained_from_scratch_needs_no_base(tmp_path):
    assert model_problems(write_model_folder(tmp_path / "m", base_model=None, tags=[FROM_SCRATCH_TAG])) == []


def test_a_malformed_model_index_is_reported(tmp_path):
    folder = write_model_folder(tmp_path / "m")
    text = (folder / "README.md").read_text()
    (folder / "README.md").write_text(text.replace("    - type: pass@1\n      value: 0.25\n", "    - value: 0.25\n"))
    [problem] = model_problems(folder)
    assert problem.startswith("README.md: the card does not parse") and "model_index" in problem
    (folder / "README.md").write_text(text.replace("value: 0.25", "value: high"))
    assert any("non-numeric value 'high'" in p for p in model_problems(folder))
