"""resources/command_server.py: a server started from a command template (here the OpenAI stub server, standing in
for vLLM or llama-server): it answers, stops on close(), dies with a SIGKILLed starter, and a command that fails at
once or a bad template is a one-line error."""

from __future__ import annotations

import sys
from pathlib import Path

import openai
import pytest

from resources.command_server import CommandServer, parse_template
from resources.llm_server import TeacherServerError
from tests.openai_stub_server import expected_answer
from tests.resources.test_llm_server import assert_dies_with_its_starter, process_gone

ROOT = Path(__file__).resolve().parents[2]
STUB = ROOT / "tests" / "openai_stub_server.py"
STUB_COMMAND = f"{{python}} {STUB} --port {{port}}"


def test_a_stub_server_started_from_a_template_answers_and_stops(tmp_path):
    messages = [{"role": "user", "content": "hello"}]
    with CommandServer(STUB_COMMAND, tmp_path / "student.q8_0.gguf", log_dir=tmp_path) as server:
        pid = server.process.pid
        assert server.running() and server.model == "student.q8_0"
        assert server.base_url == f"http://127.0.0.1:{server.port}/v1"
        assert server.process.args == [sys.executable, str(STUB), "--port", str(server.port)]
        client = openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0, timeout=30)
        reply = client.chat.completions.create(model=server.model, messages=messages)
        assert reply.choices[0].message.content == expected_answer(messages)
        assert server.log_path.parent == tmp_path and server.log_path.name.startswith("command-student.q8_0-")
    assert not server.running() and server.process is None
    assert process_gone(pid)


def test_a_command_that_exits_at_once_reports_its_log_tail(tmp_path):
    command = "{python} -c \"import sys; print('no GPU here (port {port})'); sys.exit(3)\""
    server = CommandServer(command, "/models/student", name="student", log_dir=tmp_path)
    with pytest.raises(TeacherServerError) as info:
        server.start()
    headline, _, rest = str(info.value).partition("\n")
    assert "exited with code 3 before answering" in headline and str(server.log_path) in headline
    assert f"no GPU here (port {server.port})" in rest
    assert server.process is None


def test_a_missing_program_is_one_line(tmp_path):
    server = CommandServer("no-such-server-binary --port {port}", "/m", log_dir=tmp_path)
    with pytest.raises(TeacherServerError, match="cannot run 'no-such-server-binary'.*install it") as info:
        server.start()
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(("template", "fragment"), [
    ("vllm serve {model}", "has no {port}"),
    ("vllm serve {model} --port {port} --gpu {gpu}", "unknown placeholders ['gpu']"),
    ("vllm serve '{model} --port {port}", "does not split like a shell line"),
    ("", "is empty"),
])
def test_bad_templates_are_refused_in_one_line(template, fragment):
    with pytest.raises(TeacherServerError) as info:
        parse_template(template)
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_placeholders_fill_whole_words_and_braces_escape():
    server = CommandServer("srv --model {model} --alias {name} --json '{{\"port\": {port}}}' --port {port}",
                           "/models/my student", name="s", host="0.0.0.0", log_dir=Path("/nonexistent"))
    assert server.command(8001) == ["srv", "--model", "/models/my student", "--alias", "s",
                                    "--json", '{"port": 8001}', "--port", "8001"]


@pytest.mark.own_process
def test_the_server_dies_with_a_sigkilled_starter(tmp_path):
    assert_dies_with_its_starter(f"CommandServer({STUB_COMMAND!r}, 'stub', log_dir=sys.argv[1])", tmp_path)
