"""benchmark_scores and teacher_selection on a cpu-tiny checkpoint trained from pipeline-format dialogues, with a
scripted teacher behind the OpenAI-compatible stub server and the real bwrap sandbox; and a bundled teacher scored on
the one server its resource runs (a spy in front of the stub: tests/llm_server_spy.py)."""

import json
import shutil
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from huggingface_hub import ModelCard

from assets.keys import BENCHMARK_SCORES, FINETUNED_CHECKPOINT
from assets.models.evaluation import (
    BELOW_BASE_CHECK,
    EvalConfig,
    below_base,
    benchmark_scores,
    evaluation_identity,
)
from assets.models.teacher_selection import teacher_selection
from assets.models.training import finetuned_checkpoint, local_trainer
from assets.release.sft_dataset import sft_dataset
from assets.schemas import CHECKPOINTS, SCORES, SELECTION, frame
from eval.benchmarks import load_benchmarks
from finetune.model_card import MODES
from resources.bundled_models import BUNDLED_MODELS
from resources.hub import HubPublisher
from resources.llm import TeacherLLM
from resources.llm_server import LocalTeacher
from resources.sandbox import Sandbox
from resources.store import ParquetIOManager, read_table, table_path, write_table
from tests.conftest import require_bwrap, shared_embedder
from tests.dialogue_rows import dialogue_row, write_dialogues
from tests.eval.test_backends import tiny_checkpoint
from tests.llm_server_spy import spy_servers
from tests.openai_stub_server import StubServer, StubState

ROWS = 16


class CanonicalTeacher:
    """Answers HumanEval prompts with the canonical solution and the SFT problems with their verified solution."""

    def __init__(self) -> None:
        self.humaneval = {item.entry_point: item.solution for item in load_benchmarks(offline=["humaneval"])}
        self.rows = {row["instruction"]: row["solution"] for row in (dialogue_row(i) for i in range(ROWS))}

    def __call__(self, messages: list[dict]) -> str:
        text = next(m["content"] for m in messages if m["role"] == "user")
        code = self.rows.get(text) or next((sol for name, sol in self.humaneval.items() if f"def {name}(" in text),
                                           "pass")
        return f"```python\n{code}\n```"


@pytest.mark.slow
def test_scores_and_teacher_selection(tmp_path, monkeypatch):
    require_bwrap()
    home = tmp_path / "home"
    monkeypatch.setenv("CRUCIBLE_HOME", str(home))
    write_dialogues("stdlib", range(ROWS))
    instance = dg.DagsterInstance.ephemeral()
    assets = [sft_dataset, finetuned_checkpoint, benchmark_scores, teacher_selection]
    with StubServer(StubState(responder=CanonicalTeacher())) as server:
        resources = {"io_manager": ParquetIOManager(), "hub": HubPublisher(),
                     "embedder": shared_embedder(), "sandbox": Sandbox(workers=2),
                     "teacher": TeacherLLM(base_url=server.base_url, model="canonical"), "trainer": local_trainer()}
        eval_config = {"limit": 3, "max_tokens": 48, "modes": ["single", "exec_feedback", "human_feedback"],
                       "rounds": 1}
        result = dg.materialize(assets, instance=instance, resources=resources, run_config={"ops": {
            "finetuned_checkpoint": {"config": {"recipe": "cpu-tiny", "max_steps": 2}},
            "benchmark_scores": {"config": eval_config},
            "teacher_selection": {"config": {"max_tokens": 48}}}})
        assert result.success
        # The same checkpoint with the same config again (after the evaluation edited its model card): the stored
        # scores are reused, nothing is asked or run.
        asked = server.state.total_requests
        again = dg.materialize(assets, selection=[benchmark_scores], instance=instance, resources=resources,
                               run_config={"ops": {"benchmark_scores": {"config": eval_config}}})
        assert again.success and server.state.total_requests == asked

    scores = read_table("benchmark_scores")
    assert scores.schema == pl.Schema(SCORES)
    reused = again.asset_materializations_for_node("benchmark_scores")[0].metadata
    first = result.asset_materializations_for_node("benchmark_scores")[0].metadata
    assert reused["reused"].value is True and first["reused"].value is False and reused["rows_added"].value == 0
    assert reused["evaluation"].value == first["evaluation"].value
    assert reused["checkpoint_humaneval_single_pass_at_1"].value == first["checkpoint_humaneval_single_pass_at_1"].value
    assert {json.loads(m)["evaluation"]["key"] for m in scores["manifest"]} == {first["evaluation"].value}
    assert sorted(set(scores["model_role"])) == ["base", "checkpoint", "teacher"]
    assert len(scores) == 9 and set(scores["mode"]) == {"single", "exec_feedback", "human_feedback"}
    teacher = scores.filter(pl.col("model_role") == "teacher")
    assert teacher["pass_at_1"].to_list() == [1.0, 1.0, 1.0] and (teacher["tasks"] == 3).all()
    # The simulated user was the teacher: its prompts reached the stub (the canonical teacher answers them too).
    human = scores.filter((pl.col("model_role") == "checkpoint") & (pl.col("mode") == "human_feedback"))
    human = human.row(0, named=True)
    assert json.loads(human["manifest"])["generation"]["teacher"]["model"] == "canonical"
    for row in scores.to_dicts():
        manifest = json.loads(row["manifest"])
        assert manifest["sandbox"]["backend"] == "bwrap" and manifest["n_tasks"] == 3
        assert manifest["generation"]["prompts"] and manifest["seed"] == 0 and manifest["versions"]["python"]
        assert row["ci95_low"] <= row["pass_at_1"] <= row["ci95_high"]
    checkpoint = scores.filter(pl.col("model_role") == "checkpoint").row(0, named=True)
    assert checkpoint["backend"] == "transformers" and len(checkpoint["model_sha256"]) == 64
    card = (Path(checkpoint["checkpoint"]) / "README.md").read_text()
    assert "Not yet evaluated" not in card
    results = ModelCard.load(Path(checkpoint["checkpoint"]) / "README.md").data.eval_results
    mine = scores.filter(pl.col("model_role") == "checkpoint").sort("mode")
    # One result per mode the checkpoint was scored in, on the 3 tasks it was scored on.
    assert sorted((r.metric_name, r.metric_value) for r in results) == sorted(
        (MODES[m], round(v, 4)) for m, v in zip(mine["mode"], mine["pass_at_1"]))
    assert {(r.dataset_name, r.dataset_split, r.metric_type) for r in results} == {
        ("HumanEval (first 3 of 164 tasks)", "test[:3]", "pass@1")}
    check = next(c for c in result.get_asset_check_evaluations() if c.check_name == BELOW_BASE_CHECK)
    assert check.severity == dg.AssetCheckSeverity.WARN

    selection = read_table("teacher_selection")
    assert selection.schema == pl.Schema(SELECTION)
    row = selection.row(0, named=True)
    test_rows = int((read_table("sft_dataset")["split"] == "test").sum())
    assert row["test_rows"] == test_rows and row["teacher_pass_rate"] == 1.0
    assert row["selected"] == "teacher" and row["next_teacher"] == "canonical"
    assert row["decision"] in ("teacher", "undecided") and row["round"] == 1
    assert len(json.loads(row["problems"])) == test_rows
    assert json.loads((home / "teacher_selection.json").read_text())["selected"] == "teacher"


@pytest.mark.slow
def test_a_bundled_teacher_is_scored_on_the_one_server_its_resource_runs(tmp_path, monkeypatch):
    """The teacher's own scores, the simulated user of human_feedback and the held-out comparison all go to the
    server the TeacherLLM resource started: one start for the run, none by the evaluation, and the rows name the
    teacher as before ("bundled:NAME", backend "bundled", the registry's sha256)."""
    require_bwrap()
    monkeypatch.setenv("CRUCIBLE_HOME", str(tmp_path / "home"))
    write_dialogues("stdlib", range(ROWS))
    checkpoint = tiny_checkpoint(tmp_path / "checkpoint")
    write_table(frame([{"checkpoint": str(checkpoint), "dataset_version": "v0"}], CHECKPOINTS),
                table_path(FINETUNED_CHECKPOINT))
    state = StubState(responder=CanonicalTeacher())
    with StubServer(state) as stub:
        servers = spy_servers(monkeypatch, port=stub.httpd.server_address[1])
        teacher = TeacherLLM(local=LocalTeacher(model="smollm2-135m"))
        result = dg.materialize(
            [dg.AssetSpec(FINETUNED_CHECKPOINT), sft_dataset, benchmark_scores, teacher_selection],
            instance=dg.DagsterInstance.ephemeral(),
            resources={"io_manager": ParquetIOManager(), "hub": HubPublisher(),
                       "embedder": shared_embedder(), "sandbox": Sandbox(workers=2),
                       "teacher": teacher},
            run_config={"ops": {"benchmark_scores": {"config": {"limit": 1, "max_tokens": 8, "rounds": 1,
                                                                "modes": ["single", "human_feedback"]}},
                                "teacher_selection": {"config": {"max_tokens": 8}}}})
    assert result.success
    assert servers.started == ["smollm2-135m"]
    assert servers.closed == ["smollm2-135m"]  # stopped by the resource when the run ended
    assert state.total_requests > 0

    teacher_rows = read_table("benchmark_scores").filter(pl.col("model_role") == "teacher")
    assert teacher_rows["mode"].to_list() == ["single", "human_feedback"]
    assert set(teacher_rows["model"]) == {"bundled:smollm2-135m"} and set(teacher_rows["backend"]) == {"bundled"}
    assert set(teacher_rows["model_sha256"]) == {BUNDLED_MODELS["smollm2-135m"].sha256}
    assert teacher_rows["pass_at_1"].to_list() == [1.0, 1.0]
    selection = read_table("teacher_selection").row(0, named=True)
    assert selection["teacher"] == "bundled:smollm2-135m" and selection["teacher_pass_rate"] == 1.0
    assert selection["next_teacher"] == ("bundled:smollm2-135m" if selection["selected"] == "teacher"
                                         else str(checkpoint))


def test_below_base_names_the_regressions():
    rows = [{"model_role": "base", "benchmark": "humaneval", "mode": "single", "pass_at_1": 0.5},
            {"model_role": "checkpoint", "benchmark": "humaneval", "mode": "single", "pass_at_1": 0.25},
            {"model_role": "checkpoint", "benchmark": "mbpp", "mode": "single", "pass_at_1": 0.1}]
    assert below_base(rows) == ["humaneval/single: 0.250 < 0.500"]


def scores_row(checkpoint: Path, evaluation: dict, role: str = "checkpoint") -> dict:
    return {"model_role": role, "model": str(checkpoint), "benchmark": "humaneval", "mode": "single",
            "pass_at_1": 0.25, "ci95_low": 0.0, "ci95_high": 0.5, "tasks": 4, "checkpoint": str(checkpoint),
            "manifest": json.dumps({"evaluation": evaluation}), "created_at": "2026-12-01T10:00:00Z"}


def test_a_checkpoint_scored_with_the_same_config_is_not_scored_again(tmp_path, monkeypatch):
    """benchmark_scores finds the stored rows of the same evaluation and reuses them: no backend opens (the teacher's
    address answers nothing, the checkpoint is not loaded), the table stays as it was, the metadata says so."""
    monkeypatch.setenv("CRUCIBLE_HOME", str(tmp_path / "home"))
    checkpoint = tiny_checkpoint(tmp_path / "checkpoint")
    write_table(frame([{"checkpoint": str(checkpoint), "dataset_version": "v0"}], CHECKPOINTS),
                table_path(FINETUNED_CHECKPOINT))
    teacher = TeacherLLM(base_url="http://127.0.0.1:9/v1", model="nobody")
    config = EvalConfig(limit=4, evaluate_base=False, evaluate_teacher=False)
    evaluation = evaluation_identity({"checkpoint": str(checkpoint)}, config, teacher)
    other = evaluation_identity({"checkpoint": str(checkpoint)}, EvalConfig(limit=5, evaluate_base=False,
                                                                           evaluate_teacher=False), teacher)
    stored = frame([scores_row(checkpoint, other), scores_row(checkpoint, evaluation)], SCORES)
    write_table(stored, table_path(BENCHMARK_SCORES))

    result = dg.materialize([dg.AssetSpec(FINETUNED_CHECKPOINT), benchmark_scores],
                            instance=dg.DagsterInstance.ephemeral(),
                            resources={"io_manager": ParquetIOManager(), "sandbox": Sandbox(), "teacher": teacher},
                            run_config={"ops": {"benchmark_scores": {"config": config.model_dump()}}})
    assert result.success
    meta = result.asset_materializations_for_node("benchmark_scores")[0].metadata
    assert meta["reused"].value is True and meta["evaluation"].value == evaluation["key"] != other["key"]
    assert meta["scored_at"].value == "2026-12-01T10:00:00Z" and meta["rows_added"].value == 0
    assert meta["checkpoint_humaneval_single_pass_at_1"].value == 0.25
    assert read_table(BENCHMARK_SCORES).equals(stored)
    assert [c.passed for c in result.get_asset_check_evaluations()] == [True]


def test_what_identifies_an_evaluation(tmp_path):
    """The checkpoint's folder and model files, the config, the base and the teacher where they take part; not the
    model card the evaluation itself edits, nor the resume checkpoints beside the model."""
    checkpoint = tiny_checkpoint(tmp_path / "checkpoint")
    (checkpoint / "README.md").write_text("# card\n\nNot yet evaluated.\n")
    teacher = TeacherLLM(base_url="http://127.0.0.1:9/v1", model="t1")
    row = {"checkpoint": str(checkpoint), "base_model": "/models/base"}
    config = EvalConfig(evaluate_teacher=False)
    key = evaluation_identity(row, config, teacher)["key"]

    (checkpoint / "README.md").write_text("# card\n\nhumaneval single pass@1 (4 tasks): 0.25\n")
    (checkpoint / "checkpoint-2").mkdir()
    (checkpoint / "checkpoint-2" / "optimizer.pt").write_bytes(b"state")
    assert evaluation_identity(row, config, teacher)["key"] == key
    assert evaluation_identity(row, EvalConfig(evaluate_teacher=False, max_tokens=256), teacher)["key"] != key
    assert evaluation_identity({**row, "base_model": "/models/other"}, config, teacher)["key"] != key
    # The teacher counts only where it takes part: scored, or as the simulated user of human_feedback.
    other_teacher = TeacherLLM(base_url="http://127.0.0.1:9/v1", model="t2")
    assert evaluation_identity(row, config, other_teacher)["key"] == key
    assert evaluation_identity(row, EvalConfig(), teacher)["key"] != evaluation_identity(row, EvalConfig(),
                                                                                         other_teacher)["key"]
    feedback = EvalConfig(evaluate_teacher=False, modes=["human_feedback"])
    assert evaluation_identity(row, feedback, teacher)["key"] != evaluation_identity(row, feedback,
                                                                                     other_teacher)["key"]
    (checkpoint / "model.safetensors").write_bytes((checkpoint / "model.safetensors").read_bytes() + b" ")
    changed = evaluation_identity(row, config, teacher)["key"]
    assert changed != key
    # A copy elsewhere is another checkpoint to the table (its rows name their folder), though its files match.
    copy = shutil.copytree(checkpoint, tmp_path / "copy")
    assert evaluation_identity({**row, "checkpoint": str(copy)}, config, teacher)["key"] != changed
