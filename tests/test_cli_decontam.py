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


LABELLED = Path(__file__).resolve().parent / "data" / "decontam_labelled.jsonl"


def labelled(*ids):
    rows = {r["id"]: r for r in map(json.loads, LABELLED.read_text().splitlines())}
    return [{"id": i, "instruction": rows[i]["instruction"]} for i in ids]


def test_decontam_jsonl(tmp_path):
    """Rows with and without solutions; those without get a function from the bundled solver (Qwen2.5-Coder-1.5B),
    which the execution layer runs against benchmark tests."""
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
        # Paraphrases given as text alone, one in another I/O format, and a near miss: only the solver's functions
        # can tell them apart (the text layers catch none of the three paraphrases).
        *labelled("he-029-close", "he-035-close", "he-056-io", "nm-he034-twice"),
    ]
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows) + "\n")
    out = tmp_path / "out.jsonl"
    result = run_cli(tmp_path, "decontam", "--input", str(src), "--output", str(out))
    assert result.returncode == 0, result.stderr
    got = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in got] == [r["id"] for r in rows]
    assert all(set(r) == FIELDS for r in got)
    by_id = {r["id"]: r for r in got}
    # The copy is caught by n-gram overlap and by running the solver's function; the verdict names the stronger.
    assert (by_id["copy"]["contaminated"], by_id["copy"]["benchmark"], by_id["copy"]["task_id"]) == (
        True, "mbpp", "Mbpp/17")
    assert by_id["copy"]["method"] in ("execution", "ngram")
    assert (by_id["reworded"]["method"], by_id["reworded"]["task_id"]) == ("execution", "HumanEval/47")
    assert by_id[7]["task_id"] == "HumanEval/47" and by_id[7]["method"] in ("execution", "embedding")
    for row_id, task in (("he-029-close", "HumanEval/29"), ("he-035-close", "HumanEval/35"),
                         ("he-056-io", "HumanEval/56")):
        assert (by_id[row_id]["contaminated"], by_id[row_id]["task_id"], by_id[row_id]["method"]) == (
            True, task, "execution"), row_id
    for clean in ("clean", "no-solution", "bad-solution", "nm-he034-twice"):
        assert by_id[clean] == {"id": clean, "contaminated": False, "benchmark": None, "task_id": None,
                                "score": None, "method": None}
    assert "8 rows have no function to run; qwen2.5-coder-1.5b writes one for each" in result.stderr
    assert "6 of 10 rows contaminated" in result.stderr


def test_solver_none_judges_text_only_rows_by_the_text_layers(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in labelled("he-035-close", "he-008-renamed")))
    out = tmp_path / "out.jsonl"
    result = run_cli(tmp_path, "decontam", "--input", str(src), "--output", str(out), "--solver", "none")
    assert result.returncode == 0, result.stderr
    got = {r["id"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert got["he-035-close"]["contaminated"] is False  # a short paraphrase the embedding layer cannot place
    assert (got["he-008-renamed"]["method"], got["he-008-renamed"]["task_id"]) == ("embedding", "HumanEval/8")
    assert "writes one" not in result.stderr


def test_unknown_solver_is_one_line(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"id": "a", "instruction": "Return the n-th Fibonacci number."}) + "\n")
    result = run_cli(tmp_path, "decontam", "--input", str(src), "--output", str(tmp_path / "o.jsonl"),
                     "--solver", "gpt-9")
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "--solver gpt-9" in result.stderr and "--solver none" in result.stderr
    assert not (tmp_path / "o.jsonl").exists()


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
