"""`crucible eval` and `python -m eval` follow `crucible`'s exit statuses: 2 for a command refused before any work,
1 for work that failed, each a single line on stderr."""

from __future__ import annotations

import subprocess
import sys

import cli
from tests.openai_stub_server import StubServer, StubState


def test_a_model_that_fails_mid_run_exits_1_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CRUCIBLE_HOME", str(tmp_path / "home"))
    with StubServer(StubState(faults=["400"])) as server:  # every prompt's first request: a 400, not retried
        code = cli.main(["eval", "run", "--benchmark", "humaneval", "--model", "m", "--base-url", server.base_url,
                         "--limit", "2"])
    captured = capsys.readouterr()
    assert code == 1 and captured.out == ""
    err = captured.err.strip().splitlines()
    assert len(err) == 1, captured.err
    assert err[0].startswith("crucible: error: eval run on humaneval failed: ") and "the same command resumes" in err[0]


def test_a_refused_command_exits_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CRUCIBLE_HOME", str(tmp_path / "home"))
    assert cli.main(["eval", "run", "--benchmark", "humaneval", "--model", "m", "--base-url",
                     "http://127.0.0.1:9/v1", "--n-samples", "0"]) == 2
    assert cli.main(["eval", "score", "--benchmark", "mbpp", "--samples", str(tmp_path / "nope.jsonl"),
                     "--timeout", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("crucible: error: ") for line in err), err


def test_python_m_eval_is_the_same_command_line():
    shown = subprocess.run([sys.executable, "-m", "eval", "run", "--help"], capture_output=True, text=True,
                           timeout=60)
    assert shown.returncode == 0 and shown.stdout.startswith("usage: python -m eval run ")
    assert "1    the work failed" in shown.stdout and "(default: single)" in " ".join(shown.stdout.split())
    wrong = subprocess.run([sys.executable, "-m", "eval", "score", "--benchmark", "nope"], capture_output=True,
                           text=True, timeout=60)
    assert wrong.returncode == 2 and "invalid choice: 'nope'" in wrong.stderr
