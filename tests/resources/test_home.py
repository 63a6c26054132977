"""The home: its layout named once, resolved at the edge, and passed down to what writes under it."""

from pathlib import Path

import dagster as dg

from assets.generate.seeds import seed_snippets
from assets.keys import SEED_REJECTS_TABLE, SEED_SNIPPETS
from assets.partitions import add_seed_source
from resources.home import Home
from resources.sandbox import Sandbox
from resources.store import ParquetIOManager, read_table


def test_an_explicit_root_beats_the_environment_which_beats_the_default(tmp_path, monkeypatch):
    monkeypatch.delenv("CRUCIBLE_HOME", raising=False)
    assert Home.from_env().root == Path(".crucible")
    monkeypatch.setenv("CRUCIBLE_HOME", str(tmp_path / "env"))
    assert Home.from_env().root == tmp_path / "env"
    assert Home.from_env(tmp_path / "given").root == tmp_path / "given"


def test_the_layout_is_under_the_root():
    home = Home(Path("/h"))
    named = {"data", "catalog", "cache", "models", "checkpoints", "datasets", "hub", "configs", "reports", "logs",
             "inbox", "sources_file", "teacher_selection", "teacher_state", "demo", "dagster"}
    paths = {name: getattr(home, name) for name in named}
    assert all(path.parent == Path("/h") for path in paths.values())
    assert len(set(paths.values())) == len(named)  # no two names share a place


def test_resources_take_their_home_from_their_field(tmp_path, monkeypatch):
    monkeypatch.setenv("CRUCIBLE_HOME", str(tmp_path / "env"))
    assert ParquetIOManager(home=str(tmp_path / "run")).paths.data == tmp_path / "run" / "data"
    assert ParquetIOManager().paths.data == tmp_path / "env" / "data"
    assert Sandbox(home=str(tmp_path / "run")).verdict_cache().path == tmp_path / "run" / "cache" / "verdicts.sqlite"


def test_an_asset_writes_under_the_home_it_is_given_not_the_environments(tmp_path, monkeypatch):
    """The environment names one home, the store resource another: every table lands in the resource's."""
    monkeypatch.setenv("CRUCIBLE_HOME", str(tmp_path / "env"))
    run_home = Home(tmp_path / "run")
    instance = dg.DagsterInstance.ephemeral()
    add_seed_source(instance, "stdlib")
    result = dg.materialize([seed_snippets], partition_key="stdlib", instance=instance,
                            run_config={"ops": {SEED_SNIPPETS: {"config": {"max_seeds": 3, "max_files": 40}}}},
                            resources={"io_manager": ParquetIOManager(home=str(run_home.root))})
    assert result.success
    assert len(read_table(SEED_SNIPPETS, ["stdlib"], home=run_home)) == 3
    assert (run_home.data / SEED_REJECTS_TABLE / "stdlib.parquet").is_file() and run_home.catalog.is_file()
    assert not (tmp_path / "env").exists()
