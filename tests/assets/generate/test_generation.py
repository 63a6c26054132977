"""The three generation assets, materialized with dg.materialize on a handful of stdlib files against a scripted
OpenAI-compatible teacher (tests/scripted_teacher.py) and the real bwrap sandbox."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from assets.generate.config import EXECUTION_PREFIX
from assets.generate.dialogues import verified_dialogues
from assets.generate.problems import oss_instruct_problems
from assets.generate.seeds import seed_snippets
from assets.keys import (
    DIALOGUE_REJECTS_TABLE,
    OSS_INSTRUCT_PROBLEMS,
    PROBLEM_REJECTS_TABLE,
    SEED_SNIPPETS,
    VERIFIED_DIALOGUES,
)
from assets.schemas import DIALOGUES, PROBLEMS, schema_problems
from resources.home import Home
from resources.llm import TeacherLLM
from resources.sandbox import Sandbox
from resources.store import ParquetIOManager, read_table
from tests.conftest import require_bwrap, shared_embedder
from tests.openai_stub_server import StubServer, StubState
from tests.scripted_teacher import FEEDBACK, ScriptedTeacher

ROOT = Path(__file__).resolve().parents[3]
PARTITION = "stdlib-sample"
STDLIB_FILES = ("colorsys.py", "bisect.py", "textwrap.py", "fnmatch.py", "shlex.py")
ASSETS = [seed_snippets, oss_instruct_problems, verified_dialogues]


def make_home(tmp_path: Path, files: tuple[str, ...] = STDLIB_FILES, source: str = PARTITION) -> Path:
    """CRUCIBLE_HOME with a source registry naming a tree of real stdlib files."""
    tree = tmp_path / "tree"
    tree.mkdir()
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for name in files:
        shutil.copy(stdlib / name, tree / name)
    home = tmp_path / "home"
    home.mkdir()
    (home / "sources.yaml").write_text(
        f"sources:\n  {source}: {{kind: local, path: {tree}, license: PSF-2.0}}\n")
    return home


def run_config(max_seeds: int = 8) -> dict:
    return {"ops": {"seed_snippets": {"config": {"max_seeds": max_seeds}}}}


def materialize(base_url: str):
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("seed_source", [PARTITION])
    return dg.materialize(
        ASSETS, partition_key=PARTITION, instance=instance, run_config=run_config(),
        resources={"io_manager": ParquetIOManager(),
                   "teacher": TeacherLLM(base_url=base_url, model="scripted", concurrency=1),
                   "sandbox": Sandbox(workers=2, timeout_s=10)},
    )


def metadata(result, asset: str) -> dict:
    for event in result.get_asset_materialization_events():
        if event.asset_key == dg.AssetKey(asset):
            return {k: v.value for k, v in event.materialization.metadata.items()}
    raise AssertionError(f"no materialization of {asset}")


@pytest.fixture()
def scripted(tmp_path, monkeypatch):
    require_bwrap()
    home = make_home(tmp_path)
    monkeypatch.setenv("CRUCIBLE_HOME", str(home))
    teacher = ScriptedTeacher()
    state = StubState(responder=teacher)
    with StubServer(state) as server:
        yield server, state, teacher, home


def test_pipeline_structure_verdicts_rejects_and_resume(scripted):
    server, state, teacher, _ = scripted
    result = materialize(server.base_url)
    assert result.success
    assert all(c.passed for c in result.get_asset_check_evaluations() if c.check_name != "not_empty")

    seeds = read_table(SEED_SNIPPETS)
    assert len(seeds) == 8 and set(seeds["source"]) == {PARTITION} and set(seeds["license"]) == {"PSF-2.0"}
    assert seeds["seed_id"].n_unique() == 8

    problems = read_table(OSS_INSTRUCT_PROBLEMS)
    assert not schema_problems(problems, PROBLEMS)
    by_fn = {r["entry_point"].split("_")[1]: r for r in problems.to_dicts()}
    assert set(by_fn) == {"good", "revise", "repair", "unsolvable", "wrong", "unconfirmed"}
    # Repairs ran out on these two; their expected values now come from the reference's outputs.
    assert {k for k, r in by_fn.items() if r["tests_source"] == "reference_outputs"} == {"wrong", "unconfirmed"}
    # The questioner kept expecting one too many; the reference's outputs (1 + 2 + offset 7) replaced that. Its repair
    # repeated the first reply word for word, so no second repair was asked for.
    assert by_fn["wrong"]["repair_turns"] == 1 and "add_wrong_expected_6(1, 2) == 10" in by_fn["wrong"]["tests"]
    assert [m["role"] for m in by_fn["wrong"]["messages"]] == ["user", "assistant", "user", "assistant"]
    repaired = by_fn["repair"]
    assert repaired["repair_turns"] == 1
    assert [m["role"] for m in repaired["messages"]] == ["user", "assistant", "user", "assistant"]
    assert repaired["messages"][2]["content"].startswith(EXECUTION_PREFIX)
    assert "AssertionError" in repaired["messages"][2]["content"]
    # turn 1 failed, turn 2 passed, then the rerun gate (turn 0)
    assert [(v["turn"], v["status"]) for v in repaired["verdicts"]] == [(1, "failed"), (2, "passed"), (0, "passed")]
    assert all(v["backend"] == "bwrap" for r in problems.to_dicts() for v in r["verdicts"])
    assert all(r["config_fingerprint"] and r["prompt_version"].startswith("oss_instruct.v1@")
               for r in problems.to_dicts())

    problem_rejects = read_table(PROBLEM_REJECTS_TABLE)
    assert sorted(problem_rejects["reason"]) == ["no_tests_code", "tests_pass_trivial_solution"]

    dialogues = read_table(VERIFIED_DIALOGUES)
    assert not schema_problems(dialogues, DIALOGUES)
    rows = {r["solution"].split("(")[0].split("_")[1]: r for r in dialogues.to_dicts()}
    assert set(rows) == {"good", "revise", "repair", "wrong"}
    assert rows["wrong"]["passed_turn"] == 1 and rows["wrong"]["tests_source"] == "reference_outputs"
    assert rows["good"]["passed_turn"] == 1 and rows["good"]["turns"] == 1
    revise = rows["revise"]
    assert revise["passed_turn"] == 2
    assert [m["role"] for m in revise["messages"]] == ["user", "assistant", "user", "assistant"]
    execution_turn = revise["messages"][2]["content"]
    assert execution_turn.startswith(EXECUTION_PREFIX) and FEEDBACK in execution_turn
    assert "AssertionError" in execution_turn
    assert [v["status"] for v in revise["verdicts"]] == ["failed", "passed"]
    assert all(r["messages"][-1]["role"] == "assistant" for r in dialogues.to_dicts())
    assert all(r["verdicts"][-1]["status"] == "passed" for r in dialogues.to_dicts())

    dialogue_rejects = read_table(DIALOGUE_REJECTS_TABLE)
    assert sorted(dialogue_rejects["reason"]) == ["reference_outputs_unconfirmed", "unsolved_after_max_turns"]
    unconfirmed = dialogue_rejects.filter(pl.col("reason") == "reference_outputs_unconfirmed").row(0, named=True)
    assert unconfirmed["turns"] == 1 and len(unconfirmed["messages"]) == 2
    unsolved = dialogue_rejects.filter(pl.col("reason") == "unsolved_after_max_turns").row(0, named=True)
    assert unsolved["turns"] == 4 and len(unsolved["verdicts"]) == 4 and unsolved["passed_turn"] is None
    assert [m["role"] for m in unsolved["messages"]] == ["user", "assistant"] * 4

    meta = metadata(result, VERIFIED_DIALOGUES)
    assert (meta["pass_rate_turn_1"], meta["pass_rate_turn_2"], meta["pass_rate_turn_4"]) == (0.5, 0.6667, 0.6667)
    assert meta["dropped_unsolved_after_max_turns"] == 1
    assert meta["prompt_tokens"] > 0 and meta["completion_tokens"] > 0
    assert "data:image/png;base64," in meta["pass_rate_by_turn"]
    assert metadata(result, OSS_INSTRUCT_PROBLEMS)["dropped_no_tests_code"] == 1

    # Re-materializing the partition repeats nothing: no request reaches the server, no program runs again.
    requests_before = state.total_requests
    again = materialize(server.base_url)
    assert again.success
    assert state.total_requests == requests_before
    assert metadata(again, OSS_INSTRUCT_PROBLEMS)["sandbox_runs"] == 0
    assert metadata(again, VERIFIED_DIALOGUES)["sandbox_runs"] == 0
    assert read_table(VERIFIED_DIALOGUES).sort("dialogue_id").equals(dialogues.sort("dialogue_id"))


def test_human_sim_feedback_and_tool_role(scripted):
    server, state, teacher, _ = scripted
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("seed_source", [PARTITION])
    config = run_config()
    config["ops"]["verified_dialogues"] = {"config": {"feedback_mode": "human_sim", "execution_role": "tool",
                                                      "max_turns": 2}}
    result = dg.materialize(ASSETS, partition_key=PARTITION, instance=instance, run_config=config, resources={
        "io_manager": ParquetIOManager(), "teacher": TeacherLLM(base_url=server.base_url, model="scripted",
                                                                concurrency=1),
        "sandbox": Sandbox(workers=1)})
    assert result.success
    revise = next(r for r in read_table(VERIFIED_DIALOGUES).to_dicts() if "_revise_" in r["solution"])
    assert [m["role"] for m in revise["messages"]] == ["user", "assistant", "tool", "user", "assistant"]
    assert revise["feedback_mode"] == "human_sim"
    assert revise["messages"][3]["content"] == FEEDBACK
    # The feedback request used the simulated-user prompt.
    assert teacher.feedback_systems == {"You are the person who asked for this code"}
    rejected = read_table(DIALOGUE_REJECTS_TABLE).row(0, named=True)
    assert rejected["turns"] == 2


_CHILD = """
import sys, dagster as dg
sys.path.insert(0, {root!r})
from tests.assets.generate.test_generation import materialize
materialize({url!r})
"""


def test_kill_9_loses_nothing(scripted):
    """A run killed with SIGKILL mid-way, then run again: no answer the first run stored is asked for again, and the
    result equals an uninterrupted run's."""
    server, state, teacher, home = scripted
    state.latency_s = 0.15
    env = {**os.environ, "CRUCIBLE_HOME": str(home)}
    child = subprocess.Popen([sys.executable, "-c", _CHILD.format(root=str(ROOT), url=server.base_url)], env=env,
                             cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while state.total_requests < 9 and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.05)
    assert child.poll() is None, "the child finished before it could be killed; raise the latency"
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    asked_before_kill = state.total_requests
    assert asked_before_kill >= 9
    state.latency_s = 0.0
    result = materialize(server.base_url)
    assert result.success
    # At most the one request in flight at the kill was sent twice.
    repeated = [request for request, n in state.answered.items() if n > 1]
    assert len(repeated) <= 1, repeated
    dialogues = read_table(VERIFIED_DIALOGUES)
    assert sorted(r["passed_turn"] for r in dialogues.to_dicts()) == [1, 1, 1, 2]
    assert json.dumps(sorted(read_table(PROBLEM_REJECTS_TABLE)["reason"])) == \
        '["no_tests_code", "tests_pass_trivial_solution"]'
    assert isinstance(dialogues, pl.DataFrame)


def test_teacher_outage_becomes_rejects_and_a_rerun_recovers(tmp_path, monkeypatch):
    """While the server answers every request with a non-retryable HTTP 400, each seed is rejected as teacher_error
    and the run still succeeds; failures are not cached, so once the server is back a rerun gives the full result."""
    require_bwrap()
    monkeypatch.setenv("CRUCIBLE_HOME", str(make_home(tmp_path)))
    state = StubState(faults=["400"], responder=ScriptedTeacher())
    with StubServer(state) as server:
        first = materialize(server.base_url)
        assert first.success
        assert read_table(PROBLEM_REJECTS_TABLE)["reason"].to_list() == ["teacher_error"] * 8
        assert len(read_table(OSS_INSTRUCT_PROBLEMS)) == 0 and len(read_table(VERIFIED_DIALOGUES)) == 0
        assert metadata(first, OSS_INSTRUCT_PROBLEMS)["dropped_teacher_error"] == 8
        state.faults = []  # the server is back
        second = materialize(server.base_url)
        assert second.success
    assert sorted(read_table(PROBLEM_REJECTS_TABLE)["reason"]) == ["no_tests_code", "tests_pass_trivial_solution"]
    assert len(read_table(VERIFIED_DIALOGUES)) == 4


def test_generated_dialogues_make_an_sft_dataset_whose_card_names_their_settings(scripted):
    """The pipeline's own rows through sft_dataset (curation is skipped: it has its own tests): the release loads with
    `datasets`, and the card prints the generation settings recorded under each row's fingerprint."""
    from datasets import load_dataset

    from assets.release.sft_dataset import SftConfig, release_dir, sft_dataset
    from resources.hub import HubPublisher
    from resources.store import table_path, write_table

    server, _, _, home = scripted
    assert materialize(server.base_url).success
    dialogues = read_table(VERIFIED_DIALOGUES)
    write_table(dialogues, table_path("decontaminated_dialogues", PARTITION))
    result = dg.materialize([sft_dataset], instance=dg.DagsterInstance.ephemeral(),
                            resources={"io_manager": ParquetIOManager(), "hub": HubPublisher(),
                                       "embedder": shared_embedder()})
    assert result.success and all(c.passed for c in result.get_asset_check_evaluations())
    sft = read_table("sft_dataset")
    folder = release_dir(SftConfig().name, sft["dataset_version"][0], Home.from_env())
    ds = load_dataset("parquet", data_dir=str(folder / "data"), cache_dir=str(home / "hf-cache"))
    assert sum(ds[s].num_rows for s in ds) == len(dialogues) == 4
    card = (folder / "README.md").read_text()
    fingerprint = dialogues["config_fingerprint"][0]
    assert f"### `{fingerprint}`" in card and "not recorded" not in card
    assert '"stage": "verified_dialogues"' in card and '"stage": "oss_instruct_problems"' in card
    assert '"max_turns": 4' in card and '"programmer_model": "scripted"' in card
