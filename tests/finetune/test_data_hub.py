"""Training data from a Hub dataset id (finetune/data.py): releases published to the local Hub stub with
resources/hub.py are fetched by id and by tag, read back like a local folder, served from the cache with
HF_HUB_OFFLINE=1, and every way of not getting them is one line; `python -m finetune.train --dataset ID` trains on
one."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from huggingface_hub import ModelCard, constants

from finetune.data import DatasetError, dataset_fingerprint, hub_source, load_split, parse_hub_spec, resolve_dataset
from resources.hub import HubPublisher
from tests.hub_folders import write_dataset_folder
from tests.hub_stub_server import HubStub

ROOT = Path(__file__).resolve().parents[2]
TRAIN_ONLY = [{"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*.parquet"}]}]


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """The stub holding me/sft: tag v-1 (5 train, 2 test rows), then v-2 on main (3 train rows)."""
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    v1 = write_dataset_folder(tmp_path / "v1", train=5, test=2)
    v2 = write_dataset_folder(tmp_path / "v2", train=3, test=0, configs=TRAIN_ONLY)
    with HubStub() as stub:
        publisher = HubPublisher(token="hf_t", dataset_repo="me/sft", endpoint=stub.url, home=str(tmp_path / "home"))
        first = publisher.publish_dataset(v1, "sft", tag="v-1")
        publisher.publish_dataset(v2, "sft", tag="v-2")
        monkeypatch.setenv("HF_ENDPOINT", stub.url)
        yield stub, v1, first.commit


@pytest.mark.parametrize("spec, parsed", [
    ("me/sft", ("me/sft", None)), ("me/sft@v-1a2b", ("me/sft", "v-1a2b")),
    ("org.x/data_set-2@main", ("org.x/data_set-2", "main")),
    ("/abs/folder", None), ("./rel", None), ("a/b/c", None), ("me/sft@", None), ("noslash", None),
])
def test_parse_hub_spec(spec, parsed):
    assert parse_hub_spec(spec) == parsed


def test_an_existing_folder_is_a_folder_even_when_it_looks_like_an_id(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "me" / "sft").mkdir(parents=True)
    assert resolve_dataset("me/sft") == Path("me/sft")
    assert resolve_dataset("/no/such/deep/folder") == Path("/no/such/deep/folder")


def test_a_hub_id_at_a_tag_gives_that_release_and_main_the_newest(hub):
    stub, v1, commit = hub
    folder = resolve_dataset("me/sft@v-1")
    assert hub_source(folder) == ("me/sft", commit)
    assert len(load_split(folder, "train")) == 5 and len(load_split(folder, "test")) == 2
    assert dataset_fingerprint(folder) == dataset_fingerprint(v1)  # the same Parquet bytes as the release
    assert not (folder / "reports").exists()  # only the splits and the card are fetched
    main = resolve_dataset("me/sft")
    assert len(load_split(main, "train")) == 3 and load_split(main, "test", required=False) is None


def test_offline_the_cache_serves_what_was_fetched_and_nothing_else(hub, monkeypatch):
    stub, _, commit = hub
    online = resolve_dataset("me/sft@v-1")
    stub.__exit__(None, None, None)  # the Hub is gone
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert resolve_dataset("me/sft@v-1") == online
    with pytest.raises(DatasetError, match=r"dataset me/other: not a local folder, and the Hub dataset cannot be "
                                           r"fetched .*unset HF_HUB_OFFLINE") as err:
        resolve_dataset("me/other")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("spec, cause", [
    ("me/missing", "RepositoryNotFoundError"),
    ("me/sft@v-9", "RevisionNotFoundError"),
    ("me/bad..name", "nor a valid Hub dataset id"),
])
def test_what_cannot_be_fetched_is_one_line(hub, spec, cause):
    with pytest.raises(DatasetError) as err:
        resolve_dataset(spec)
    message = str(err.value)
    assert message.startswith(f"dataset {spec}: not a local folder") and cause in message and "\n" not in message


def test_an_unreachable_endpoint_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    with pytest.raises(DatasetError, match=r"dataset me/sft: .*check the id, the revision, HF_ENDPOINT and HF_TOKEN"):
        resolve_dataset("me/sft")


def train(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "finetune.train", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, env={**os.environ, **env})


def test_the_training_command_names_a_dataset_it_cannot_fetch(hub, tmp_path):
    stub, _, _ = hub
    done = train("--recipe", "cpu-tiny", "--dataset", "me/missing", "--output", str(tmp_path / "out"),
                 env={"HF_ENDPOINT": stub.url, "HF_HUB_CACHE": str(tmp_path / "hf-cache"), "HF_HUB_OFFLINE": ""})
    assert done.returncode == 2, done.stderr[-2000:]
    [line] = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert line.startswith("error: dataset me/missing: not a local folder") and "RepositoryNotFoundError" in line


@pytest.mark.slow
def test_the_training_command_trains_on_a_hub_dataset_tag(hub, tmp_path):
    stub, _, commit = hub
    out = tmp_path / "out"
    done = train("--recipe", "cpu-tiny", "--dataset", "me/sft@v-1", "--output", str(out), "--max-steps", "1",
                 "--models-dir", str(tmp_path / "models"),
                 env={"HF_ENDPOINT": stub.url, "HF_HUB_CACHE": str(tmp_path / "hf-cache"), "HF_HUB_OFFLINE": ""})
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads((out / "training_summary.json").read_text())
    assert hub_source(summary["dataset"]) == ("me/sft", commit) and summary["train_rows"] == 5
    card = ModelCard.load(out / "README.md")
    assert card.data.datasets == ["me/sft"] and f"commit `{commit[:12]}`" in card.text
