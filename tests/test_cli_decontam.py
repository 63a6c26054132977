"""`crucible decontam --input IN.jsonl --output OUT.jsonl`, called exactly as the acceptance checks call it."""

import json
import os
import subprocess
import sys
from pathlib import Path

from eval.benchmarks import load_benchmarks

CRUCIBLE = [str(Path(sys.executable).parent / "crucible")]
FIELDS = {"id", "contaminated", "benchmark", "task_id", "score", "method"}


def run_cli(tmp_path, *args, **kw):
    env = {**os.environ, "CRUCIBLE_HOME": str(tmp_path.parent / "cli-home"), "HF_HUB_OFFLINE": "1", **kw}
    return subprocess.run(CRUCIBLE + list(args), capture_output=True, text=True, timeout=300, env=env)


def test_decontam_jsonl(tmp_path):
    items = {it.task_id: it for it in load_benchmarks()}
    median = items["HumanEval/47"]
    rows = [
        {"id": "copy", "instruction": items["Mbpp/17"].prompt},
        {"id": "reworded", "instruction": "Implement middle_value(data) returning the median of a list of numbers.",
         "solution": "def middle_value(data):\n    s = sorted(data)\n    m = len(s) // 2\n"
                     "    return s[m] if len(s) % 2 else (s[m - 1] + s[m]) / 2.0\n"},
        {"id": "clean", "instruction": "Compare two semantic version strings and return -1, 0 or 1.",
         "solution": "def cmp(a, b):\n    x = [int(p) for p in a.split('.')]\n    y = [int(p) for p in b.split('.')]\n"
                     "    return (x > y) - (x < y)\n"},
        {"id": "no-solution", "instruction": "Parse an INI file into a dictionary of sections."},
        {"id": "bad-solution", "instruction": "Wrap text to a width.", "solution": "def wrap(:"},
        {"id": 7, "instruction": median.description, "solution": None},
    ]
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows) + "\n")
    out = tmp_path / "out.jsonl"
    result = run_cli(tmp_path, "decontam", "--input", str(src), "--output", str(out))
    assert result.returncode == 0, result.stderr
    got = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in got] == ["copy", "reworded", "clean", "no-solution", "bad-solution", 7]
    assert all(set(r) == FIELDS for r in got)
    by_id = {r["id"]: r for r in got}
    assert by_id["copy"] == {"id": "copy", "contaminated": True, "benchmark": "mbpp", "task_id": "Mbpp/17",
                             "score": 1.0, "method": "ngram"}
    assert (by_id["reworded"]["method"], by_id["reworded"]["task_id"]) == ("execution", "HumanEval/47")
    assert (by_id[7]["method"], by_id[7]["task_id"]) == ("embedding", "HumanEval/47")
    assert by_id[7]["score"] > 0.99
    for clean in ("clean", "no-solution", "bad-solution"):
        assert by_id[clean] == {"id": clean, "contaminated": False, "benchmark": None, "task_id": None,
                                "score": None, "method": None}
    assert "3 of 6 rows contaminated" in result.stderr


def test_text_layers_only_and_bad_input(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text('{"id": "a", "instruction": "Return the n-th Fibonacci number."}\n{"id": "b"}\n')
    result = run_cli(tmp_path, "decontam", "--input", str(src), "--output", str(tmp_path / "o.jsonl"),
                     "--layers", "ngram,embedding")
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "line 2 needs an \"id\" and a string \"instruction\"" in result.stderr
    missing = run_cli(tmp_path, "decontam", "--input", str(tmp_path / "nope.jsonl"), "--output", "o.jsonl")
    assert missing.returncode == 2 and "nope.jsonl: no such file" in missing.stderr
    layers = run_cli(tmp_path, "decontam", "--input", str(src), "--output", "o.jsonl", "--layers", "ngram,magic")
    assert layers.returncode == 2 and "--layers 'ngram,magic'" in layers.stderr


def test_no_sandbox_refuses_the_execution_layer(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text('{"id": "a", "instruction": "x", "solution": "def f():\\n    return 1\\n"}\n')
    result = run_cli(tmp_path, "decontam", "--input", str(src), "--output", str(tmp_path / "o.jsonl"),
                     PATH="/nonexistent")
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "--layers ngram,embedding" in result.stderr and not (tmp_path / "o.jsonl").exists()
