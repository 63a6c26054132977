"""`crucible sandbox run`, called exactly as the acceptance checks call it."""

import json
import subprocess
import sys
from pathlib import Path

CRUCIBLE = [str(Path(sys.executable).parent / "crucible")]


def run_cli(*args, **kw):
    return subprocess.run(CRUCIBLE + list(args), capture_output=True, text=True, timeout=120, **kw)


def test_sandbox_run_jsonl(tmp_path):
    lines = [
        json.dumps({"id": "ok", "code": "print('hi')"}),
        json.dumps({"id": "bad", "code": "raise ValueError('x')"}),
        json.dumps({"id": "slow", "code": "import time; time.sleep(60)", "timeout_s": 0.5}),
        json.dumps({"id": "mem", "code": "x = bytearray(8 * 1024 ** 3)"}),
        "{this is not json",
        json.dumps({"id": "nocode"}),
        json.dumps(["a", "list"]),
        "",
        json.dumps({"id": 7, "code": "pass"}),
    ]
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(lines) + "\n")
    result = run_cli("sandbox", "run", "--input", str(path), "--workers", "2", "--timeout", "5", "--memory-mb", "256")
    assert result.returncode == 0, result.stderr
    rows = {r["id"]: r for r in map(json.loads, result.stdout.splitlines())}
    assert {k: v["status"] for k, v in rows.items()} == {
        "ok": "passed", "bad": "failed", "slow": "timeout", "mem": "memory",
        "line-5": "error", "nocode": "error", "line-7": "error", "7": "passed",
    }
    assert rows["ok"]["stdout"] == "hi\n" and rows["ok"]["exit_code"] == 0
    assert "ValueError: x" in rows["bad"]["stderr"]
    assert "not valid JSON" in rows["line-5"]["stderr"]
    assert set(rows["ok"]) == {"id", "status", "exit_code", "stdout", "stderr", "wall_ms", "language", "compile_ms"}


def test_sandbox_run_loads_no_heavy_library(tmp_path):
    """The command starts at once because it imports only the pool: neither Dagster nor the data libraries load, and
    the program still runs in the real sandbox."""
    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps({"id": "a", "code": "print(6 * 7)"}) + "\n")
    probe = ("import sys, cli\n"
             f"code = cli.main(['sandbox', 'run', '--input', {str(path)!r}])\n"
             "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'dagster', 'pydantic', 'polars', 'duckdb', "
             "'datasets', 'torch', 'openai'})\n"
             "print('HEAVY', heavy, code)\n")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    lines = result.stdout.splitlines()
    assert json.loads(lines[0])["stdout"] == "42\n", result.stderr
    assert lines[-1] == "HEAVY [] 0", result.stderr


def test_missing_input_is_one_clear_line(tmp_path):
    result = run_cli("sandbox", "run", "--input", str(tmp_path / "nope.jsonl"))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "nope.jsonl: no such file" in result.stderr


def test_bad_limits_are_one_clear_line(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text('{"id": "a", "code": "pass"}\n')
    result = run_cli("sandbox", "run", "--input", str(path), "--timeout", "0")
    assert result.returncode == 2
    assert "timeout_s must be > 0" in result.stderr and result.stderr.count("\n") == 1


def test_no_backend_refuses_to_run(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text('{"id": "a", "code": "pass"}\n')
    # An empty PATH hides bwrap: Crucible must refuse rather than run the code unsandboxed.
    result = run_cli("sandbox", "run", "--input", str(path), env={"PATH": "/nonexistent"})
    assert result.returncode == 2
    assert result.stdout == ""
    assert "apt-get install -y bubblewrap" in result.stderr and result.stderr.count("\n") == 1
