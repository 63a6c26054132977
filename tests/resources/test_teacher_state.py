"""resources/teacher_state.py and the TeacherLLM resource following it: a promoted student replaces the configured
teacher for every request, served from its GGUF or by a server command."""

import pytest

from resources.home import Home
from resources.llm import TeacherLLM
from resources.llm_server import LocalTeacher
from resources.teacher_endpoint import TeacherEndpoint
from resources.teacher_state import (
    TeacherState,
    TeacherStateError,
    current_round,
    read_teacher_state,
    with_round,
    write_teacher_state,
)


def test_a_state_round_trips_and_gives_the_round(tmp_path):
    home = Home(tmp_path)
    assert read_teacher_state(home) is None and current_round(home) == 1
    state = TeacherState(round=3, role="student", model="ck.q8_0", since_round=2, reason="better",
                         checkpoint="/ck", serving="gguf", gguf="/m/ck.q8_0.gguf")
    write_teacher_state(home, state)
    assert read_teacher_state(home) == state and current_round(home) == 3
    assert with_round([{"id": 1}, {"id": 2, "round": 1}], home) == [{"id": 1, "round": 3}, {"id": 2, "round": 3}]
    assert not list(tmp_path.glob(".teacher-*"))  # the temporary file was renamed into place


@pytest.mark.parametrize(("fields", "message"), [
    ({"round": 0}, "1 <= since_round <= round"),
    ({"since_round": 4}, "1 <= since_round <= round"),
    ({"role": "oracle"}, "role must be"),
    ({"role": "student"}, "needs serving 'gguf'"),
    ({"role": "student", "serving": "command", "command": "vllm serve {model}"}, "needs serving 'gguf'"),
])
def test_inconsistent_states_are_refused(fields, message):
    with pytest.raises(ValueError, match=message):
        TeacherState(**{"round": 3, "role": "configured", "model": "m", "since_round": 1, "reason": "r", **fields})


def test_an_unreadable_state_file_is_one_line_naming_it(tmp_path):
    home = Home(tmp_path)
    home.teacher_state.write_text("{not json")
    with pytest.raises(TeacherStateError, match="teacher.json is not a teacher state .* delete the file"):
        read_teacher_state(home)


def test_the_resource_follows_a_promoted_student_unless_told_not_to(tmp_path):
    root = str(tmp_path)
    teacher = TeacherLLM(base_url="http://10.0.0.5:8000/v1", model="coder", concurrency=6, home=root,
                         local=LocalTeacher(home=root))
    assert teacher.endpoint == teacher.configured_endpoint and teacher.endpoint.label == "coder"
    write_teacher_state(Home(tmp_path), TeacherState(round=2, role="student", model="ck.q8_0", since_round=2,
                                                     reason="better", checkpoint="/ck", serving="gguf",
                                                     gguf="/m/ck.q8_0.gguf"))
    assert teacher.endpoint == TeacherEndpoint(bundled="/m/ck.q8_0.gguf", timeout_s=300.0)
    assert teacher.endpoint.label == "bundled:/m/ck.q8_0.gguf" and teacher.endpoint.is_bundled
    assert teacher.endpoint.served_name == "ck.q8_0"  # what llama.cpp answers as, and the rows carry
    assert teacher.model_copy(update={"follow_promotions": False}).endpoint == teacher.configured_endpoint
    write_teacher_state(Home(tmp_path), TeacherState(round=2, role="student", model="ck", since_round=2,
                                                     reason="better", checkpoint="/ck", serving="command",
                                                     command="vllm serve {model} --port {port}"))
    served = teacher.endpoint
    assert served.kind == "command" and served.name == served.served_name == "ck" and served.label == "command:/ck"
    assert served.requests_in_flight == 6  # a served checkpoint batches like any server
    with pytest.raises(ValueError, match="needs the checkpoint"):
        TeacherEndpoint(command="vllm serve {model}")
