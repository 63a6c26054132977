"""Publishing through resources/hub.py against the local Hub stub (the real huggingface_hub client) and offline:
an upload removes the files a new release dropped (only those Crucible owns), tags every version so an older one
stays loadable by revision, and tolerates an existing tag; staging without a token mirrors that with a replaced
folder and a tag record."""

import json
import shutil

import pytest
from huggingface_hub import HfApi

from resources.home import Home
from resources.hub import HubError, HubPublisher, read_tags, tags_file, version_tag
from tests.hub_folders import dataset_meta, write_dataset_folder, write_model_folder
from tests.hub_stub_server import HubStub

TRAIN_ONLY = [{"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*.parquet"}]}]


def release(folder, test: int = 2):
    """A release folder with a plot and a report beside its data; without a test split when test=0."""
    configs = dataset_meta()["configs"] if test else TRAIN_ONLY
    write_dataset_folder(folder, train=5, test=test, configs=configs)
    (folder / "plots").mkdir()
    (folder / "plots" / "turns.png").write_bytes(b"png")
    (folder / "reports").mkdir()
    (folder / "reports" / "contamination_report.parquet").write_bytes(
        (folder / "data" / "train-00000-of-00001.parquet").read_bytes())
    return folder


def local_files(folder) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("version, tag", [("1a2b3c4d", "v-1a2b3c4d"), ("cpu-tiny 1/2", "v-cpu-tiny-1-2"),
                                          ("..x..", "v-x")])
def test_version_tag(version, tag):
    assert version_tag(version) == tag


def test_upload_deletes_what_a_new_release_dropped_and_tags_every_version(tmp_path):
    v1, v2 = release(tmp_path / "v1"), release(tmp_path / "v2", test=0)
    with HubStub() as stub:
        hub = HubPublisher(token="hf_t", dataset_repo="me/sft", endpoint=stub.url, home=str(tmp_path / "home"))
        first = hub.publish_dataset(v1, "sft", tag="v-1")
        assert first.status == "uploaded" and first.tag == "v-1"
        assert stub.files("me/sft", "dataset") == local_files(first.staged)
        # A file a user added to the repo by hand is not Crucible's to delete.
        HfApi(endpoint=stub.url, token="hf_t").upload_file(path_or_fileobj=b"mine", path_in_repo="NOTES.txt",
                                                           repo_id="me/sft", repo_type="dataset")

        second = hub.publish_dataset(v2, "sft", tag="v-2")
        head = stub.files("me/sft", "dataset")
        assert stub.commits[-1]["deleted"] == ["data/test-00000-of-00001.parquet"]
        assert set(head) == set(local_files(second.staged)) | {"NOTES.txt"}
        assert head["README.md"] == (v2 / "README.md").read_bytes()
        # Each version stays loadable by its tag.
        assert stub.tag_names("me/sft", "dataset") == {"v-1": first.commit, "v-2": second.commit}
        assert "data/test-00000-of-00001.parquet" in stub.files("me/sft", "dataset", revision="v-1")

        # Publishing a version again keeps its tag where it was (the Hub answers 409; that is not an error).
        again = hub.publish_dataset(v2, "sft", tag="v-2")
        assert again.commit != second.commit and stub.tags[-1]["status"] == 409
        assert stub.tag_names("me/sft", "dataset")["v-2"] == second.commit
    records = read_tags("dataset", "sft", Home.from_env(str(tmp_path / "home")))
    assert {t: r["commit"] for t, r in records.items()} == {"v-1": first.commit, "v-2": second.commit}


def test_staging_without_a_token_replaces_the_folder_and_records_each_tag(tmp_path):
    home = Home.from_env(str(tmp_path / "home"))
    v1, v2 = release(tmp_path / "v1"), release(tmp_path / "v2", test=0)
    hub = HubPublisher(home=str(home.root))
    staged = hub.publish_dataset(v1, "sft", tag="v-1").staged
    assert (staged / "data" / "test-00000-of-00001.parquet").is_file()
    result = hub.publish_dataset(v2, "sft", tag="v-2")
    assert result.status == "staged" and result.staged == staged
    assert local_files(staged) == local_files(v2)  # the dropped test split is gone from the staging too
    tags = read_tags("dataset", "sft", home)
    assert set(tags) == {"v-1", "v-2"} and tags["v-1"]["commit"] is None
    assert tags["v-1"]["source"] == str(v1) and "data/test-00000-of-00001.parquet" in tags["v-1"]["files"]
    assert "data/test-00000-of-00001.parquet" not in tags["v-2"]["files"]
    assert tags_file("dataset", "sft", home).parent == staged.parent  # beside the staging, never uploaded
    # A tag is never moved: staging v1's folder again under v-2 leaves v-2's record as it was.
    hub.publish_dataset(v1, "sft", tag="v-2")
    assert read_tags("dataset", "sft", home)["v-2"] == tags["v-2"]


def test_a_refused_tag_is_one_line_after_a_successful_upload(tmp_path):
    with HubStub(fail={"tag": 403}) as stub:
        hub = HubPublisher(token="hf_t", dataset_repo="me/sft", endpoint=stub.url, home=str(tmp_path / "home"))
        with pytest.raises(HubError, match=r"tagging dataset me/sft commit \w+ as v-1 failed: .*403") as err:
            hub.publish_dataset(release(tmp_path / "v1"), "sft", tag="v-1")
        assert "\n" not in str(err.value) and len(stub.commits) == 1


def test_an_invalid_staged_dataset_is_not_uploaded(tmp_path):
    folder = release(tmp_path / "v1")
    (folder / "data" / "test-00000-of-00001.parquet").unlink()
    with HubStub() as stub:
        hub = HubPublisher(token="hf_t", dataset_repo="me/sft", endpoint=stub.url, home=str(tmp_path / "home"))
        with pytest.raises(HubError, match="split 'test'.*matches no file"):
            hub.publish_dataset(folder, "sft", tag="v-1")
        assert stub.commits == [] and stub.requests == []


def test_model_upload_takes_the_given_card_and_drops_an_adapter_the_new_checkpoint_lacks(tmp_path):
    lora = write_model_folder(tmp_path / "lora")
    (lora / "adapter").mkdir()
    (lora / "adapter" / "adapter_config.json").write_text(json.dumps({"r": 4}))
    (lora / "checkpoint-2").mkdir()
    (lora / "checkpoint-2" / "optimizer.pt").write_bytes(b"state")
    full = shutil.copytree(lora, tmp_path / "full", ignore=shutil.ignore_patterns("adapter"))
    card = (full / "README.md").read_text().replace("# A card", "# The card for the Hub")
    with HubStub() as stub:
        hub = HubPublisher(token="hf_t", model_repo="me/coder", endpoint=stub.url, home=str(tmp_path / "home"))
        hub.publish_model(lora, "coder", tag="v-coder-1")
        assert "adapter/adapter_config.json" in stub.files("me/coder")
        assert not any(p.startswith("checkpoint-") for p in stub.files("me/coder"))
        result = hub.publish_model(full, "coder", tag="v-coder-2", card=card)
        head = stub.files("me/coder")
    assert stub.commits[-1]["deleted"] == ["adapter/adapter_config.json"] and "adapter/adapter_config.json" not in head
    assert head["README.md"].decode() == card == (result.staged / "README.md").read_text()
    assert "# The card for the Hub" not in (full / "README.md").read_text()  # the checkpoint folder is untouched
