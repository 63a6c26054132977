"""The seed-source sensor (inbox drops, sources.yaml entries), the nightly schedule, round partitions and the jobs."""

import datetime as dt
import os
import time
from pathlib import Path

import dagster as dg
import polars as pl

from assets.automation import (
    INBOX_MIN_AGE_S,
    nightly_generation,
    plan_new_sources,
    seed_source_sensor,
)
from assets.generate.seed_sources import load_sources, register_source
from assets.generate.seeds import seed_snippets
from assets.keys import SEED_SNIPPETS
from assets.partitions import SEED_SOURCE, add_seed_source, source_of
from resources.home import Home
from resources.store import ParquetIOManager, read_table

FUNCTIONS = "".join(
    f'def f{i}(x):\n    """Return x scaled by {i}."""\n    y = x * {i}\n    return y + {i}\n\n\n' for i in range(8))


def make_tree(root: Path, license_text: str | None = "MIT License\n\nPermission is hereby granted, free of charge") \
        -> Path:
    root.mkdir(parents=True)
    (root / "mod.py").write_text(FUNCTIONS)
    if license_text:
        (root / "LICENSE").write_text(license_text)
    return root


def age(path: Path, seconds: float = INBOX_MIN_AGE_S + 5) -> None:
    past = time.time() - seconds
    for p in [path, *(path.rglob("*") if path.is_dir() else [])]:
        os.utime(p, (past, past))


def test_sensor_registers_inbox_drops_adds_partitions_and_requests_runs(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("CRUCIBLE_HOME", str(home))
    inbox = home / "inbox"
    age(make_tree(inbox / "My Lib"))
    pl.DataFrame({"content": [FUNCTIONS], "path": ["a.py"], "license": ["Apache-2.0"]}).write_parquet(
        inbox / "shard0.parquet")
    age(inbox / "shard0.parquet")
    make_tree(inbox / "still-copying")  # modified just now: left for a later tick
    register_source({"kind": "local", "path": str(tmp_path), "license": "MIT"}, "from-yaml")
    (inbox / "notes.txt").write_text("not a source")
    age(inbox / "notes.txt")

    instance = dg.DagsterInstance.ephemeral()
    result = seed_source_sensor(dg.build_sensor_context(instance=instance))
    assert isinstance(result, dg.SensorResult)
    added = result.dynamic_partitions_requests[0]
    assert added.partitions_def_name == SEED_SOURCE
    assert sorted(added.partition_keys) == ["from-yaml", "my-lib", "shard0", "stdlib"]
    # stdlib becomes a partition without a run; the others get one generate + curate run each.
    assert sorted(r.partition_key for r in result.run_requests) == ["from-yaml", "my-lib", "shard0"]
    assert {r.run_key for r in result.run_requests} == {"new-source:from-yaml", "new-source:my-lib",
                                                        "new-source:shard0"}
    sources = load_sources()
    assert sources["my-lib"].kind == "local" and sources["my-lib"].license == "MIT"
    assert sources["shard0"].dataset == "parquet" and sources["shard0"].data_files[0].endswith("shard0.parquet")
    assert "still-copying" not in sources and "notes" not in sources

    instance.add_dynamic_partitions(SEED_SOURCE, list(added.partition_keys))
    again = seed_source_sensor(dg.build_sensor_context(instance=instance))
    assert isinstance(again, dg.SkipReason) or not again.run_requests
    age(inbox / "still-copying")
    later = seed_source_sensor(dg.build_sensor_context(instance=instance))
    assert [r.partition_key for r in later.run_requests] == ["still-copying"]


def test_sensor_reports_a_broken_sources_file(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("CRUCIBLE_HOME", str(home))
    home.mkdir()
    (home / "sources.yaml").write_text("sources:\n  bad: {kind: ftp}\n")
    result = seed_source_sensor(dg.build_sensor_context(instance=dg.DagsterInstance.ephemeral()))
    assert isinstance(result, dg.SkipReason)
    assert "needs `kind: local`, `kind: hf` or `kind: import`" in result.skip_message


def test_source_yaml_in_a_dropped_tree_overrides_detection(tmp_path, monkeypatch):
    monkeypatch.setenv("CRUCIBLE_HOME", str(tmp_path / "home"))
    inbox = tmp_path / "home" / "inbox"
    tree = make_tree(inbox / "proj", license_text=None)
    (tree / "source.yaml").write_text("license: BSD-3-Clause\nexclude: ['vendor/*']\n")
    age(tree)
    new, to_run = plan_new_sources({"stdlib"}, Home.from_env())
    assert new == ["proj"] and to_run == [("proj", "generate_and_curate")]
    spec = load_sources()["proj"]
    assert spec.license == "BSD-3-Clause" and set(spec.exclude) == {"vendor/*", "source.yaml"}


def test_nightly_schedule_adds_a_round_partition(tmp_path, monkeypatch):
    monkeypatch.setenv("CRUCIBLE_HOME", str(tmp_path / "home"))
    when = dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.timezone.utc)
    with dg.instance_for_test() as instance:
        requests = nightly_generation(dg.build_schedule_context(instance=instance, scheduled_execution_time=when))
        assert [r.partition_key for r in requests] == ["stdlib~20261123"]
        assert instance.get_dynamic_partitions(SEED_SOURCE) == ["stdlib~20261123"]
        monkeypatch.setenv("CRUCIBLE_NIGHTLY_SOURCES", "stdlib,nowhere")
        skipped = nightly_generation(dg.build_schedule_context(instance=instance, scheduled_execution_time=when))
        assert isinstance(skipped, dg.SkipReason) and "nowhere" in skipped.skip_message
    assert nightly_generation.default_status == dg.DefaultScheduleStatus.STOPPED
    assert seed_source_sensor.default_status == dg.DefaultSensorStatus.RUNNING


def test_a_round_partition_draws_fresh_seeds_from_the_same_source(tmp_path, monkeypatch):
    monkeypatch.setenv("CRUCIBLE_HOME", str(tmp_path / "home"))
    tree = make_tree(tmp_path / "tree")
    register_source({"kind": "local", "path": str(tree), "license": "MIT"}, "mine")
    instance = dg.DagsterInstance.ephemeral()
    add_seed_source(instance, "mine", "mine~r2")
    config = {"ops": {"seed_snippets": {"config": {"max_seeds": 4}}}}
    for key in ("mine", "mine~r2"):
        assert dg.materialize([seed_snippets], partition_key=key, instance=instance, run_config=config,
                              resources={"io_manager": ParquetIOManager()}).success
    first, second = read_table(SEED_SNIPPETS, ["mine"]), read_table(SEED_SNIPPETS, ["mine~r2"])
    assert len(first) == len(second) == 4
    assert not set(first["seed_id"]) & set(second["seed_id"])
    assert set(second["source"]) == {"mine"} and source_of("mine~r2") == "mine"


def test_jobs_cover_their_phases():
    from definitions import defs

    def keys(name):
        return {k.to_user_string() for k in defs.resolve_job_def(name).asset_layer.executable_asset_keys}

    assert keys("generate") == {"seed_snippets", "seed_rejects", "oss_instruct_problems", "problem_rejects",
                                "verified_dialogues", "dialogue_rejects"}
    assert keys("curate") == {"deduplicated_dialogues", "dedup_rejects", "decontaminated_dialogues",
                              "contamination_report"}
    assert keys("generate_and_curate") == keys("generate") | keys("curate")
    assert keys("dataset") == {"sft_dataset", "hub_dataset"}

