"""The teacher asset on what teacher_selection stored: the first round's teacher, a promoted student served by a
configured server command (the OpenAI stub stands in for vLLM, started as a real process), a decision that keeps it,
and a rematerialization without a new decision. The GGUF path is covered end to end by
tests/assets/test_self_learning.py."""

from pathlib import Path

import dagster as dg
import pytest

from assets.keys import TEACHER, TEACHER_SELECTION
from assets.models.teacher import teacher
from assets.models.teacher_selection import SelectionConfig, compare_modes, selection_row
from assets.schemas import SELECTION, frame
from resources.home import Home
from resources.llm import ChatRequest, TeacherLLM
from resources.store import ParquetIOManager, read_table, table_path, write_table
from resources.teacher_state import read_teacher_state
from tests.openai_stub_server import expected_answer

STUB = Path(__file__).resolve().parents[2] / "openai_stub_server.py"
COMMAND = f"{{python}} {STUB} --port {{port}}"


def decide(home: Home, round_: int, checkpoint: Path, student_wins: bool, earlier: list[dict]) -> list[dict]:
    student = {f"p{i}": 0 if student_wins else None for i in range(6)}
    teacher_ = {f"p{i}": None if student_wins else 0 for i in range(6)}
    config = SelectionConfig()
    row = selection_row(round_, {"checkpoint": str(checkpoint), "dataset_version": "v"}, "configured-teacher",
                        config, compare_modes(student, teacher_, config), [])
    rows = [*earlier, row]
    write_table(frame(rows, SELECTION), table_path(TEACHER_SELECTION, None, home))
    return rows


def materialize(home: Home, resource: TeacherLLM):
    return dg.materialize([dg.AssetSpec(TEACHER_SELECTION), teacher], selection=[teacher],
                          resources={"io_manager": ParquetIOManager(home=str(home.root)), "teacher": resource},
                          run_config={"ops": {TEACHER: {"config": {"serve_command": COMMAND}}}})


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("CRUCIBLE_HOME", str(tmp_path / "home"))
    return Home(tmp_path / "home")


def test_a_promoted_student_is_served_by_its_command_and_every_request_goes_there(home, tmp_path):
    checkpoint = tmp_path / "checkpoints" / "student-1"
    checkpoint.mkdir(parents=True)
    (checkpoint / "config.json").write_text("{}")
    (checkpoint / "model.safetensors").write_bytes(b"weights")
    resource = TeacherLLM(base_url="http://127.0.0.1:9/v1", model="configured-teacher", home=str(home.root))

    decisions = decide(home, 1, checkpoint, student_wins=True, earlier=[])
    result = materialize(home, resource)
    assert result.success
    state = read_teacher_state(home)
    assert (state.round, state.role, state.serving, state.model, state.since_round) == (2, "student", "command",
                                                                                       "student-1", 2)
    assert state.command == COMMAND and state.checkpoint == str(checkpoint) and len(state.checkpoint_sha256) == 64
    meta = result.asset_materializations_for_node(TEACHER)[0].metadata
    assert meta["round"].value == 2 and "| 1 | `configured-teacher` | configured |" in meta["lineage"].value

    # The resource now sends every request to the command-served student (the stub, started as a process).
    endpoint = resource.endpoint
    assert endpoint.kind == "command" and endpoint.label == f"command:{checkpoint}"
    client = resource.client()
    question = [{"role": "user", "content": "hello"}]
    [answer] = client.complete_batch([ChatRequest("q", question)])
    assert answer.content == expected_answer(question) and client.model == "student-1"
    server = next(iter(resource._promoted.values()))
    assert server.running()
    resource.teardown_after_execution(None)
    assert not server.running()

    # Round 2's decision keeps the student: a new row for round 3, the same teacher since round 2.
    decide(home, 2, checkpoint, student_wins=False, earlier=decisions)
    assert materialize(home, resource).success
    state = read_teacher_state(home)
    assert (state.round, state.model, state.since_round) == (3, "student-1", 2)
    assert state.reason.startswith("kept: the student is not better")
    # Nothing new decided: nothing changes.
    assert materialize(home, resource).success
    table = read_table(TEACHER, home=home)
    assert table["round"].to_list() == [1, 2, 3] and table["model"].to_list() == ["configured-teacher", "student-1",
                                                                                  "student-1"]


def test_a_student_that_does_not_answer_leaves_the_teacher_in_place(home, tmp_path):
    checkpoint = tmp_path / "student-2"
    checkpoint.mkdir()
    (checkpoint / "config.json").write_text("{}")
    decide(home, 1, checkpoint, student_wins=True, earlier=[])
    resource = TeacherLLM(base_url="http://127.0.0.1:9/v1", model="configured-teacher", home=str(home.root))
    result = dg.materialize([dg.AssetSpec(TEACHER_SELECTION), teacher], selection=[teacher], raise_on_error=False,
                            resources={"io_manager": ParquetIOManager(home=str(home.root)), "teacher": resource},
                            run_config={"ops": {TEACHER: {"config": {
                                "serve_command": "{python} -c 'import sys; sys.exit(3)' {port}"}}}})
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error.message
    assert "the promoted student student-2 did not answer" in failure and "the current teacher stays" in failure
    assert read_teacher_state(home) is None and resource.endpoint.label == "configured-teacher"
