"""sft_dataset and hub_dataset materialized from dialogue tables in the pipeline's format; the results read back
with `datasets`, polars and DuckDB; the card validated; staging and upload (against a local Hub stub) tested."""

import json
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest
from datasets import load_dataset
from huggingface_hub import DatasetCard

from assets.fingerprints import fingerprint, record_config
from assets.release.publish import hub_dataset
from assets.release.sft_dataset import SftConfig, build_sft, release_dir, sft_dataset
from assets.release.sft_split import split_problems
from assets.schemas import DIALOGUES, SFT, frame
from resources.embedder import Embedder
from resources.home import Home
from resources.hub import HubError, HubPublisher, stage_folder, validate_dataset_folder
from resources.store import ParquetIOManager, catalog_path, read_table, refresh_catalog, table_path, write_table
from tests.dialogue_rows import dialogue_row, write_contamination, write_dialogues
from tests.hub_stub_server import HubStub


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("CRUCIBLE_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def materialize(hub: HubPublisher | None = None, config: SftConfig | None = None, raise_on_error=True,
                instance=None):
    run_config = {"ops": {"sft_dataset": {"config": (config or SftConfig()).model_dump()}}}
    # The bundled embedder (the card's statistics), its vectors cached beside the tests' folders: once a session.
    embedder = Embedder(cache_path=str(Home.from_env().root.parent.parent / "embedding-cache.sqlite"))
    return dg.materialize([sft_dataset, hub_dataset], instance=instance or dg.DagsterInstance.ephemeral(),
                          resources={"io_manager": ParquetIOManager(), "hub": hub or HubPublisher(),
                                     "embedder": embedder},
                          run_config=run_config, raise_on_error=raise_on_error)


def two_sources(n_stdlib=14, n_local=6):
    write_dialogues("stdlib", range(n_stdlib))
    write_dialogues("mylib", range(100, 100 + n_local))
    write_contamination("stdlib", [{"dialogue_id": "gone0001", "benchmark": "humaneval", "task_id": "HumanEval/35",
                                    "layer": "execution", "score": 1.0, "detail": "max_element",
                                    "instruction": "Return the largest element of a list."}])


def test_split_is_by_problem_hash_stable_and_near_nine_to_one():
    ids = [f"p{i}" for i in range(2000)]
    splits = split_problems(ids, 0.1, 1)
    share = sum(s == "test" for s in splits.values()) / len(ids)
    assert 0.08 < share < 0.12
    # A problem's split does not depend on which other problems are present.
    assert split_problems(ids[:500], 0.1, 1) == {p: splits[p] for p in ids[:500]}
    # Tiny datasets still get a held-out problem, and keep a training one.
    assert sorted(split_problems(["a", "b"], 0.1, 1).values()) == ["test", "train"]
    assert split_problems(["a"], 0.1, 1) == {"a": "train"}
    assert set(split_problems(ids[:5], 0.1, 0).values()) <= {"train", "test"}


def test_build_sft_keeps_dialogues_of_a_problem_together_and_versions_by_rows():
    rows = [dialogue_row(i) for i in range(12)]
    # A second dialogue for problem 0 (another feedback mode): it must land in problem 0's split.
    rows.append({**rows[0], "dialogue_id": "again0000000000", "feedback_mode": "human_sim"})
    table = build_sft(frame(rows, DIALOGUES), SftConfig())
    assert table.schema == pl.Schema(SFT)
    assert table.filter(pl.col("problem_id") == rows[0]["problem_id"])["split"].n_unique() == 1
    assert table["dataset_version"].n_unique() == 1
    fewer = build_sft(frame(rows[:-1], DIALOGUES), SftConfig())
    assert fewer["dataset_version"][0] != table["dataset_version"][0]
    assert table["id"].to_list() == sorted(table["id"].to_list())


def test_sft_dataset_and_staging_read_back_with_datasets_polars_and_duckdb(home):
    two_sources()
    record_config("cfg000test0", stage="verified_dialogues", config={"max_turns": 4, "feedback_mode": "execution"})
    result = materialize()
    assert result.success
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {"not_empty": True, "release_loads": True}

    table = read_table("sft_dataset")
    assert len(table) == 20 and table.schema == pl.Schema(SFT)
    version = table["dataset_version"][0]
    folder = release_dir("crucible-code-feedback", version, Home.from_env())
    counts = {s: int((table["split"] == s).sum()) for s in ("train", "test")}
    assert counts["test"] >= 1 and counts["train"] > counts["test"]

    # datasets, as a user would load the release.
    ds = load_dataset("parquet", data_files={s: str(folder / "data" / f"{s}-*.parquet") for s in counts},
                      cache_dir=str(home / "hf-cache"))
    assert {s: ds[s].num_rows for s in ds} == counts
    first = ds["train"][0]["messages"]
    assert first[0]["role"] == "user" and first[-1]["role"] == "assistant" and "```python" in first[-1]["content"]
    multi = [r for r in ds["train"] if r["turns"] == 2]
    assert multi and multi[0]["messages"][2]["content"].startswith("Execution result:")

    # polars on the release's Parquet: the explicit schema survives the plain-Arrow write.
    train = pl.read_parquet(folder / "data" / "train-00000-of-00001.parquet")
    assert train.columns == list(SFT) and train["messages"].dtype == SFT["messages"]

    # DuckDB: the catalog has a view per asset with a partition column, and joins across the lineage.
    with duckdb.connect(str(catalog_path()), read_only=True) as con:
        views = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
        assert {"sft_dataset", "decontaminated_dialogues", "contamination_report", "verified_dialogues"} <= views
        by_split = dict(con.execute("SELECT split, count(*) FROM sft_dataset GROUP BY ALL").fetchall())
        assert by_split == counts
        per_source = dict(con.execute(
            "SELECT d.partition, count(*) FROM decontaminated_dialogues d JOIN sft_dataset s "
            "ON s.id = d.dialogue_id GROUP BY ALL").fetchall())
        assert per_source == {"stdlib": 14, "mylib": 6}
        assert con.execute("SELECT task_id FROM contamination_report").fetchall() == [("HumanEval/35",)]

    # The card: Hub front matter, the statistics, the contamination report, the settings behind the fingerprint.
    card = DatasetCard.load(folder / "README.md")
    assert (card.data.license, card.data.license_name, card.data.license_link) == ("other", "mixed-seed-licenses",
                                                                                   "LICENSES.md")
    assert "| `PSF-2.0` | no (`other`) | 14 | stdlib (14) |" in (folder / "LICENSES.md").read_text()
    assert card.data.configs[0]["data_files"][1] == {"split": "test", "path": "data/test-*.parquet"}
    assert card.data.task_categories == ["text-generation"]
    text = card.text
    assert "HumanEval/35" in text and "| stdlib | 14 |" in text and "| mylib | 6 |" in text
    assert '"feedback_mode": "execution"' in text and "cfg000test0" in text
    assert "| 2 | 10 |" in text  # ten dialogues passed at the second turn
    for png in ("plots/pass_rate_by_turn.png", "plots/turns.png"):
        assert (folder / png).read_bytes()[:4] == b"\x89PNG"
    assert pl.read_parquet(folder / "reports" / "contamination_report.parquet")["task_id"].to_list() == \
        ["HumanEval/35"]

    # Staging without a token: the exact folder, validated.
    hub_event = result.asset_materializations_for_node("hub_dataset")[0]
    assert hub_event.metadata["status"].value == "staged"
    staged = home / "hub" / "datasets" / "crucible-code-feedback"
    assert sorted(p.relative_to(staged) for p in staged.rglob("*")) == \
        sorted(p.relative_to(folder) for p in folder.rglob("*"))
    assert validate_dataset_folder(staged).splits == counts


def test_rematerializing_gives_the_same_version_and_a_new_source_keeps_old_splits(home):
    two_sources()
    materialize()
    before = read_table("sft_dataset")
    materialize()
    again = read_table("sft_dataset")
    assert again.equals(before)
    write_dialogues("third", range(200, 210))
    materialize()
    grown = read_table("sft_dataset")
    assert len(grown) == 30 and grown["dataset_version"][0] != before["dataset_version"][0]
    old = dict(zip(before["problem_id"], before["split"]))
    assert all(old[p] == s for p, s in zip(grown["problem_id"], grown["split"]) if p in old)


def test_partitions_config_selects_sources(home):
    two_sources()
    materialize(config=SftConfig(partitions=["mylib"]))
    assert set(read_table("sft_dataset")["source"]) == {"mylib"}


def test_upload_sends_one_commit_with_the_staged_files(home):
    two_sources()
    with HubStub() as stub:
        hub = HubPublisher(token="hf_test_token", dataset_repo="crucible-tests/sft", private=True,
                           endpoint=stub.url)
        result = materialize(hub)
        assert result.success
        assert stub.repos == [{"name": "sft", "organization": "crucible-tests", "visibility": "private",
                               "type": "dataset"}]
        assert len(stub.commits) == 1
        commit = stub.commits[0]
        assert commit["repo"] == "crucible-tests/sft" and commit["type"] == "dataset"
        staged = home / "hub" / "datasets" / "crucible-code-feedback"
        local = {str(p.relative_to(staged)): p.read_bytes() for p in staged.rglob("*") if p.is_file()}
        assert commit["files"] == local
        assert "README.md" in local and "data/train-00000-of-00001.parquet" in local
        assert all(r["authorization"] == "Bearer hf_test_token" for r in stub.requests)
    meta = result.asset_materializations_for_node("hub_dataset")[0].metadata
    assert meta["status"].value == "uploaded" and meta["commit"].value == stub.commits[0]["oid"]
    assert stub.commits[0]["header"]["summary"].startswith("Crucible dataset crucible-code-feedback")
    card = local["README.md"].decode()
    assert 'load_dataset("crucible-tests/sft")' in card


@pytest.mark.parametrize("endpoint", ["commit", "create"])
def test_failed_upload_is_one_clear_line_and_keeps_the_staged_folder(home, endpoint):
    two_sources()
    with HubStub(fail={endpoint: 500 if endpoint == "commit" else 401}) as stub:
        hub = HubPublisher(token="hf_test_token", dataset_repo="crucible-tests/sft", endpoint=stub.url)
        result = materialize(hub, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    message = failure.step_failure_data.error.message
    staged = home / "hub" / "datasets" / "crucible-code-feedback"
    assert "upload of dataset crucible-tests/sft failed" in message and str(staged) in message
    assert (staged / "README.md").is_file() and list((staged / "data").glob("*.parquet"))
    # The dataset itself was produced and stays.
    assert len(read_table("sft_dataset")) == 20


def test_bad_repo_id_and_missing_folder_are_one_line_errors(home, tmp_path):
    two_sources()
    materialize()
    version = read_table("sft_dataset")["dataset_version"][0]
    folder = release_dir("crucible-code-feedback", version, Home.from_env())
    with pytest.raises(HubError, match=r"hub repo id 'not a repo!' is not valid.*namespace/name") as err:
        HubPublisher(token="t", dataset_repo="not a repo!").publish_dataset(folder, "x")
    assert "\n" not in str(err.value)
    with pytest.raises(HubError, match="is not a folder; materialize it first"):
        stage_folder(tmp_path / "nowhere", "dataset", "x")


def test_card_problems_are_reported(home):
    two_sources()
    materialize()
    version = read_table("sft_dataset")["dataset_version"][0]
    folder = release_dir("crucible-code-feedback", version, Home.from_env())
    broken = stage_folder(folder, "dataset", "broken")
    (broken / "README.md").write_text("---\nlicense: [unclosed\n---\n# x\n")
    with pytest.raises(HubError, match="the card does not parse"):
        validate_dataset_folder(broken)
    (broken / "README.md").write_text("---\nlicense: mit\ntask_categories: [text-generation]\n---\n# x\n")
    with pytest.raises(HubError, match="names no configs"):
        validate_dataset_folder(broken)


def test_empty_input_gives_an_empty_dataset_and_hub_refuses_it(home):
    write_table(frame([], DIALOGUES), table_path("decontaminated_dialogues", "stdlib"))
    result = materialize(raise_on_error=False)
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks["not_empty"] is False
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "sft_dataset is empty" in failure.step_failure_data.error.message


def test_catalog_opens_in_the_duckdb_shell_and_refreshes_under_an_open_reader(home):
    write_dialogues("stdlib", range(3))
    assert "verified_dialogues" in refresh_catalog()
    shell = subprocess.run([str(Path(sys.executable).parent / "duckdb"), "-readonly", "-csv", str(catalog_path()),
                            "-c", "SELECT partition, count(*) AS n FROM verified_dialogues GROUP BY ALL"],
                           capture_output=True, text=True, timeout=60)
    assert shell.returncode == 0, shell.stderr
    assert shell.stdout.split() == ["partition,n", "stdlib,3"]
    reader = subprocess.Popen([sys.executable, "-c", (
        "import duckdb, sys, time; con = duckdb.connect(sys.argv[1]); print('open', flush=True); time.sleep(30)"),
        str(catalog_path())], stdout=subprocess.PIPE, text=True)
    try:
        assert reader.stdout.readline().strip() == "open"
        for p in table_path("verified_dialogues", "stdlib").parent.glob("*.parquet"):
            p.unlink()
        assert "verified_dialogues" not in refresh_catalog()
    finally:
        reader.kill()
        reader.wait()
    with duckdb.connect(str(catalog_path()), read_only=True) as con:
        views = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
    assert "verified_dialogues" not in views and "decontaminated_dialogues" in views


def test_recorded_configs_expand_fingerprints(home):
    from assets.fingerprints import read_config

    inner = record_config(fingerprint({"a": 1}), stage="oss_instruct_problems", config={"a": 1})
    outer = record_config(fingerprint(inner, "x"), problems_fingerprint=inner, dialogues_fingerprint="unknown0")
    expanded = read_config(outer)
    assert expanded["problems_fingerprint"]["config"] == {"a": 1}
    assert expanded["dialogues_fingerprint"] == "unknown0"
    assert json.loads((home / "configs" / f"{inner}.json").read_text())["stage"] == "oss_instruct_problems"


def test_a_one_problem_dataset_has_only_a_train_split_that_loads_and_stages(home):
    write_dialogues("stdlib", range(1))
    result = materialize()
    assert result.success and all(c.passed for c in result.get_asset_check_evaluations())
    table = read_table("sft_dataset")
    folder = release_dir("crucible-code-feedback", table["dataset_version"][0], Home.from_env())
    assert table["split"].to_list() == ["train"]
    assert [p.name for p in (folder / "data").iterdir()] == ["train-00000-of-00001.parquet"]
    card = DatasetCard.load(folder / "README.md")
    assert card.data.configs[0]["data_files"] == [{"split": "train", "path": "data/train-*.parquet"}]
    assert "too small to have one" in card.text
    staged = home / "hub" / "datasets" / "crucible-code-feedback"
    assert validate_dataset_folder(staged).splits == {"train": 1}
