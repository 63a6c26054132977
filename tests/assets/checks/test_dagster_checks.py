"""The stored checks inside Dagster runs: they run after their asset in the same run, a blocking one that fails stops
the run before the next asset reads the table, and `crucible check`'s results land in the instance like a run's."""

from __future__ import annotations

import dagster as dg
import polars as pl

from assets.checks.dagster_checks import check_stored, failed, stored_checks
from assets.checks.registry import CONTAMINATION_CHECK, RERUN_CHECK, SPLITS_CHECK, STORED_TABLE_CHECK
from assets.release.publish import hub_dataset
from assets.release.sft_dataset import sft_dataset
from eval.benchmarks import load_benchmarks
from resources.dagster_home import persistent_instance
from resources.home import Home
from resources.hub import HubPublisher
from resources.sandbox import Sandbox
from resources.store import ParquetIOManager, table_path, write_table
from tests.conftest import require_bwrap, shared_embedder
from tests.dialogue_rows import dialogue_row, write_dialogues


def materialize(instance):
    checks = stored_checks([sft_dataset, hub_dataset])
    return dg.materialize([sft_dataset, hub_dataset, *checks], instance=instance, raise_on_error=False,
                          resources={"io_manager": ParquetIOManager(), "hub": HubPublisher(),
                                     "embedder": shared_embedder(),
                                     "sandbox": Sandbox(workers=1, timeout_s=10)})


def test_the_release_checks_run_in_the_run_and_a_failing_blocking_one_stops_it(tmp_path, monkeypatch):
    require_bwrap()
    monkeypatch.setenv("CRUCIBLE_HOME", str(tmp_path / "home"))
    write_dialogues("stdlib", range(10), ("decontaminated_dialogues",))
    result = materialize(dg.DagsterInstance.ephemeral())
    assert result.success
    evaluations = {e.check_name: e.passed for e in result.get_asset_check_evaluations()
                   if e.asset_key == dg.AssetKey("sft_dataset")}
    assert {STORED_TABLE_CHECK, RERUN_CHECK, CONTAMINATION_CHECK, SPLITS_CHECK} <= set(evaluations)
    assert all(evaluations.values()), evaluations

    # A benchmark problem that reached the curated table (by hand, here) reaches the release: the blocking
    # contamination check fails and the Hub staging never runs.
    item = next(i for i in load_benchmarks() if i.task_id == "Mbpp/12")
    path = table_path("decontaminated_dialogues", "stdlib")
    rows = pl.read_parquet(path).to_dicts() + [{**dialogue_row(30), "dialogue_id": "pasted-mbpp12",
                                                 "instruction": item.description, "solution": item.solution}]
    write_table(pl.DataFrame(rows, schema=pl.read_parquet_schema(path)), path)
    blocked = materialize(dg.DagsterInstance.ephemeral())
    assert not blocked.success
    failing = {e.check_name: e for e in blocked.get_asset_check_evaluations() if not e.passed}
    # (its solution does not pass the tests it was given either: the re-run check fails too)
    assert set(failing) == {CONTAMINATION_CHECK, RERUN_CHECK}
    assert "pasted-mbpp12" in failing[CONTAMINATION_CHECK].description
    assert "Mbpp/12" in failing[CONTAMINATION_CHECK].description
    assert not blocked.asset_materializations_for_node("hub_dataset")


def test_check_stored_records_its_results_in_the_home_instance(tmp_path, monkeypatch):
    require_bwrap()
    home = Home(tmp_path / "home")
    monkeypatch.setenv("CRUCIBLE_HOME", str(home.root))
    from definitions import defs  # its resources read CRUCIBLE_HOME when used
    write_dialogues("stdlib", range(4), ("verified_dialogues",), home=home)
    lines = check_stored(defs, home, "verified_dialogues", "stdlib", sample=0)
    assert not failed(lines) and {line.check for line in lines} >= {STORED_TABLE_CHECK, RERUN_CHECK}
    instance = persistent_instance(home)
    key = dg.AssetCheckKey(dg.AssetKey("verified_dialogues"), RERUN_CHECK)
    record = instance.event_log_storage.get_latest_asset_check_execution_by_key([key])[key]
    assert record.evaluation.passed and record.partition == "stdlib"
    run = instance.get_run_by_id(record.run_id)
    assert run.job_name == "check" and run.tags["dagster/partition"] == "stdlib"

    # A broken row afterwards: the next `crucible check` records the failure, naming the row.
    path = table_path("verified_dialogues", "stdlib", home)
    broken = pl.read_parquet(path).with_columns(pl.lit("def nothing():\n    pass\n").alias("solution"))
    write_table(broken, path)
    lines = check_stored(defs, home, "verified_dialogues", "stdlib", sample=0)
    assert failed(lines)
    record = instance.event_log_storage.get_latest_asset_check_execution_by_key([key])[key]
    assert not record.evaluation.passed and broken["dialogue_id"][0] in (record.evaluation.description or "")
