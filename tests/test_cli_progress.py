"""Progress of the long commands: bars on stderr when it is a terminal (a pseudo-terminal here), none with --quiet or
when stderr is a pipe, and stdout holding only the results either way."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import struct
import subprocess
import sys
import termios
import threading
from pathlib import Path

from tests.conftest import require_bwrap
from tests.dialogue_rows import write_dialogues
from tests.openai_stub_server import StubServer, StubState

CRUCIBLE = str(Path(sys.executable).parent / "crucible")


def on_terminal(*args: str, env: dict | None = None, timeout: float = 300) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of `crucible ARGS` with stderr on a 120-column pseudo-terminal, stdout a pipe."""
    main, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    process = subprocess.Popen([CRUCIBLE, *args], stdout=subprocess.PIPE, stderr=child,
                               env={**os.environ, **(env or {})})
    os.close(child)
    chunks: list[bytes] = []

    def drain() -> None:  # a pseudo-terminal holds little: read while the command runs
        while True:
            try:
                data = os.read(main, 65536)
            except OSError:  # EIO: the last writer closed it
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain)
    reader.start()
    out = process.stdout.read().decode()
    process.wait(timeout)
    reader.join(30)
    os.close(main)
    return process.returncode, out, b"".join(chunks).decode(errors="replace")


def programs(tmp_path: Path, n: int) -> Path:
    path = tmp_path / "programs.jsonl"
    path.write_text("".join(json.dumps({"id": f"p{i}", "code": f"print({i})"}) + "\n" for i in range(n)))
    return path


def test_sandbox_run_shows_a_bar_on_a_terminal_only(tmp_path):
    require_bwrap()
    source = programs(tmp_path, 5)
    code, out, err = on_terminal("sandbox", "run", "--input", str(source))
    assert code == 0, err
    assert [json.loads(line)["status"] for line in out.splitlines()] == ["passed"] * 5
    assert "sandbox (bwrap): 100%" in err and "5/5" in err
    code, out, err = on_terminal("sandbox", "run", "--input", str(source), "--quiet")
    assert code == 0 and len(out.splitlines()) == 5 and err == ""
    piped = subprocess.run([CRUCIBLE, "sandbox", "run", "--input", str(source)], capture_output=True, text=True,
                           timeout=120)
    assert piped.returncode == 0 and piped.stderr == "" and len(piped.stdout.splitlines()) == 5


def test_teacher_ask_counts_the_answers(tmp_path):
    source = tmp_path / "requests.jsonl"
    source.write_text("".join(json.dumps({"id": i, "messages": [{"role": "user", "content": f"q{i}"}]}) + "\n"
                              for i in range(6)))
    with StubServer(StubState()) as server:
        code, out, err = on_terminal("teacher", "ask", "--base-url", server.base_url, "--model", "stub", "--input",
                                     str(source), "--output", str(tmp_path / "answers.jsonl"),
                                     env={"CRUCIBLE_HOME": str(tmp_path / "home")})
    assert code == 0, err
    assert out == ""  # the answers go to --output
    assert "stub: answers: 100%" in err and "6/6" in err
    assert len((tmp_path / "answers.jsonl").read_text().splitlines()) == 6


def test_dataset_shows_the_run_steps(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("CRUCIBLE_HOME", str(home))
    write_dialogues("stdlib", range(8))
    code, out, err = on_terminal("dataset", env={"CRUCIBLE_HOME": str(home)})
    assert code == 0, err
    assert json.loads(out)["rows"]["train"] >= 1
    assert "dataset: 100%" in err and "step" in err
    assert "sft_dataset: " in err  # the asset's own log line, above the bar
