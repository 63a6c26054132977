"""method_dialogues in the graph: a (method, source) partition materialized after the default pipeline, its rows and
rejects, its sandbox re-run check (which fails on a corrupted table), and dedup reading every method's rows."""

from __future__ import annotations

import dagster as dg
import polars as pl
import pytest

from assets.checks.reruns import reruns_pass
from assets.checks.stored import CheckInput
from assets.curate.dedup import deduplicated_dialogues
from assets.generate.method_dialogues import method_dialogues
from assets.keys import DEDUPLICATED_DIALOGUES, METHOD_DIALOGUES, METHOD_REJECTS_TABLE, VERIFIED_DIALOGUES
from assets.partitions import method_partition, method_source_partitions, seed_source_partitions
from resources.embedder import Embedder
from resources.home import Home
from resources.llm import TeacherLLM
from resources.sandbox import Sandbox
from resources.store import ParquetIOManager, read_table, table_path
from tests.assets.generate.test_generation import PARTITION, make_home, materialize
from tests.conftest import require_bwrap
from tests.openai_stub_server import StubServer, StubState
from tests.scripted_teacher import ScriptedTeacher


@pytest.fixture()
def generated(tmp_path, monkeypatch):
    """The default pipeline's tables for PARTITION, and a server with the scripted teacher."""
    require_bwrap()
    home = make_home(tmp_path)
    monkeypatch.setenv("CRUCIBLE_HOME", str(home))
    with StubServer(StubState(responder=ScriptedTeacher())) as server:
        assert materialize(server.base_url).success
        yield server, home


def run_method(method: str, base_url: str, instance: dg.DagsterInstance, config: dict | None = None):
    return dg.materialize(
        [method_dialogues], partition_key=method_partition(method, PARTITION), instance=instance,
        run_config={"ops": {METHOD_DIALOGUES: {"config": config or {}}}},
        resources={"io_manager": ParquetIOManager(), "embedder": Embedder(),
                   "teacher": TeacherLLM(base_url=base_url, model="scripted", concurrency=1),
                   "sandbox": Sandbox(workers=2, timeout_s=10)})


def test_methods_partition_rows_checks_and_dedup_across_methods(generated):
    server, home = generated
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("seed_source", [PARTITION])
    simulated = run_method("interaction_simulation", server.base_url, instance, {"difficulty_samples": 2})
    assert simulated.success
    rows = read_table(METHOD_DIALOGUES, [f"interaction_simulation|{PARTITION}"])
    assert len(rows) >= 1 and set(rows["method"]) == {"interaction_simulation"}
    assert set(rows["feedback_mode"]) == {"human_sim"}
    assert rows["difficulty"].null_count() == 0 and set(rows["difficulty"]) <= {"easy", "medium", "hard"}
    rejects = read_table(METHOD_REJECTS_TABLE, [f"interaction_simulation|{PARTITION}"])
    assert len(rows) + len(rejects) == 6  # every verified problem of the source, kept or rejected with a reason
    assert rejects["reason"].null_count() == 0

    packed = run_method("single_turn_packing", server.base_url, instance, {"single_turn_packing": {
        "min_similarity": 0.0}})
    assert packed.success
    packed_rows = read_table(METHOD_DIALOGUES, [f"single_turn_packing|{PARTITION}"])
    assert len(packed_rows) >= 1 and all(n >= 2 for n in packed_rows["turns"])

    # Dedup reads every method's rows of the source; rows of different methods are never each other's duplicates.
    upstream = [dg.AssetSpec(VERIFIED_DIALOGUES, partitions_def=seed_source_partitions),
                dg.AssetSpec(METHOD_DIALOGUES, partitions_def=method_source_partitions)]
    dedup = dg.materialize([*upstream, deduplicated_dialogues], partition_key=PARTITION, instance=instance,
                           resources={"io_manager": ParquetIOManager(), "embedder": Embedder()})
    assert dedup.success
    kept = read_table(DEDUPLICATED_DIALOGUES, [PARTITION])
    counts = dict(kept.group_by("method").len().iter_rows())
    assert counts == {"function_instruct": len(read_table(VERIFIED_DIALOGUES, [PARTITION])),
                      "interaction_simulation": len(rows), "single_turn_packing": len(packed_rows)}

    # The re-run check reads what is stored: a corrupted solution fails it.
    path = table_path(METHOD_DIALOGUES, f"interaction_simulation|{PARTITION}")
    corrupted = rows.with_columns(pl.lit("def nothing():\n    pass\n").alias("solution"))
    corrupted.write_parquet(path)
    sandbox = Sandbox(workers=1, timeout_s=10)
    try:
        outcome = reruns_pass(METHOD_DIALOGUES, "dialogue_id", CheckInput(
            Home.from_env(), f"interaction_simulation|{PARTITION}", pool=sandbox.pool, sample=0))
    finally:
        sandbox.close()
    assert not outcome.passed and len(outcome.metadata["failing"]) == len(rows)


def test_a_method_without_parents_fails_in_one_line(tmp_path, monkeypatch):
    require_bwrap()
    monkeypatch.setenv("CRUCIBLE_HOME", str(make_home(tmp_path)))
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("seed_source", [PARTITION])
    result = dg.materialize(
        [method_dialogues], partition_key=method_partition("follow_up", PARTITION), instance=instance,
        raise_on_error=False,
        resources={"io_manager": ParquetIOManager(), "embedder": Embedder(),
                   "teacher": TeacherLLM(base_url="http://127.0.0.1:9/v1", model="scripted"),
                   "sandbox": Sandbox(workers=1)})
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "follow_up on source" in str(failure.event_specific_data.error.message)
