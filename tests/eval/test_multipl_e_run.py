"""`crucible eval run` on MultiPL-E (eval/multipl_e_run.py): the prompt, how an answer becomes a sample, and the whole
run against a scripted OpenAI-compatible model (tests/eval/scripted_multipl_e_model.py) in the real bwrap sandbox:
per-language figures, the samples file (which `eval score` rescores to the same verdicts), the CLI as a subprocess,
and the modes and inputs it refuses in one line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import cli
from eval.multipl_e import load_multipl_e
from eval.multipl_e_run import header_pattern, messages_for, prompt_template, sample_of
from tests.conftest import require_bwrap
from tests.eval.scripted_multipl_e_model import PLAN, ScriptedMultiPLEModel, answer, fixture_completions
from tests.openai_stub_server import StubServer, StubState

DATA = Path(__file__).resolve().parents[1] / "data" / "multipl_e"
ROWS = DATA / "rows.jsonl"
CRUCIBLE = [str(Path(sys.executable).parent / "crucible")]
ITEMS = load_multipl_e("multipl-e", ROWS)


def expected_passes(task_ids) -> dict[str, bool]:
    return {task_id: PLAN[task_id][1] == "correct" for task_id in task_ids}


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# -- the prompt and the answers -------------------------------------------------------------------------------------
def test_the_prompt_names_the_language_and_shows_the_problem_in_its_fence():
    item = ITEMS["rs/HumanEval_1001_sum_of_squares"]
    messages = messages_for(item, prompt_template())
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert "```lua\n" in messages[1]["content"] and "```lua\n" in messages[2]["content"]  # the worked example
    assert messages[3]["content"] == f"Complete this Rust function.\n\n```rust\n{item.prompt.rstrip()}\n```"
    assert item.test.strip() not in "\n".join(m["content"] for m in messages)
    assert prompt_template().version.startswith("multipl_e.v1@")
    assert messages_for(ITEMS["cpp/HumanEval_1001_sum_of_squares"], prompt_template())[3]["content"].startswith(
        "Complete this C++ function.\n\n```cpp\n#include<assert.h>")


@pytest.mark.parametrize("task_id", sorted(PLAN))
def test_each_shape_of_answer_becomes_the_sample_multipl_e_scores(task_id):
    item = ITEMS[task_id]
    shape, fixture = PLAN[task_id]
    completion = fixture_completions()[(task_id, fixture)]
    sample, fenced = sample_of(answer(item, shape, completion), item, 3)
    assert (sample.task_id, sample.index, fenced) == (task_id, 3, shape != "unfenced")
    if shape in ("body", "unfenced"):
        assert sample.kind == "completion" and sample.text.strip("\n") == completion.strip("\n")
    else:  # the header is there: the program before the tests, cut where MultiPL-E cuts the completion
        assert sample.kind == "solution"
        assert sample.text.endswith(item.truncate(completion))
    if shape in ("whole", "two_blocks"):
        assert sample.text == item.prompt + item.truncate(completion)


def test_a_bare_function_gets_the_prompts_setup_and_one_with_its_own_keeps_it():
    py = ITEMS["py/HumanEval_1001_sum_of_squares"]
    bare, _ = sample_of("```python\ndef sum_of_squares(numbers: List[int]) -> int:\n    return 0\n```", py, 0)
    assert bare.text == "from typing import List\n\ndef sum_of_squares(numbers: List[int]) -> int:\n    return 0\n"
    own, _ = sample_of("```python\nimport math\n\ndef sum_of_squares(numbers):\n    return 0\n\nif __name__ == "
                       "'__main__':\n    print(sum_of_squares([1]))\n```", py, 0)
    assert own.text == "import math\n\ndef sum_of_squares(numbers):\n    return 0\n"  # cut at the stop token "\nif"


def test_a_recursive_call_in_a_body_is_not_a_header():
    cpp, sh = ITEMS["cpp/HumanEval_1001_sum_of_squares"], ITEMS["sh/HumanEval_1001_sum_of_squares"]
    assert not header_pattern(cpp).search("    return numbers.empty() ? 0 : sum_of_squares(rest);\n}\n")
    assert header_pattern(cpp).search("long  sum_of_squares (const std::vector<long>& numbers){\n")
    assert not header_pattern(sh).search('    echo $(( $1 + $(sum_of_squares "$2") ))\n}\n')
    assert header_pattern(sh).search("function sum_of_squares() {\n")
    java = ITEMS["java/HumanEval_1002_count_vowels"]
    assert header_pattern(java).search("    static long countVowels(String s) {")
    assert not header_pattern(java).search("        return countVowels(text.substring(1));")


# -- the whole run in the sandbox -----------------------------------------------------------------------------------
@pytest.mark.slow
def test_single_mode_scores_every_language_and_writes_the_samples(tmp_path, monkeypatch, capsys):
    require_bwrap()
    monkeypatch.setenv("CRUCIBLE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = ScriptedMultiPLEModel(ITEMS)
    out = tmp_path / "samples.jsonl"
    with StubServer(StubState(responder=model)) as server:
        code = cli.main(["eval", "run", "--benchmark", "multipl-e", "--benchmark-file", str(ROWS), "--model",
                         "scripted", "--base-url", server.base_url, "--samples-out", str(out), "--workers", "2"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert len(captured.out.strip().splitlines()) == 1
    report = json.loads(captured.out)
    assert list(report)[:3] == ["benchmark", "mode", "pass@1"] and report["mode"] == "single"
    assert len(model.requests) == 18

    passes = expected_passes(ITEMS)
    assert report["per_task"] == {task_id: float(ok) for task_id, ok in passes.items()}
    assert report["pass@1"] == pytest.approx(12 / 18) and report["tasks_scored"] == 18
    assert {lang: f["pass@1"] for lang, f in report["per_language"].items()} == pytest.approx({
        "cpp": 2 / 3, "javascript": 2 / 3, "rust": 0.5, "go": 0.5, "java": 1.0, "bash": 2 / 3, "typescript": 1.0,
        "php": 0.0, "python": 1.0})
    assert report["per_language"]["cpp"]["statuses"] == {"passed": 2, "failed": 1}
    assert report["per_benchmark"]["multipl-e-mbpp"]["pass@1"] == 1.0
    assert report["per_benchmark"]["multipl-e-humaneval"]["pass@1"] == pytest.approx(9 / 15)
    # A body is "truncated" where it reaches a stop token ("\n}"); JavaScript's stop tokens are not in its body.
    assert report["extracted"] == {"solution": 12, "truncated": 5, "completion": 1}
    assert "unsupported" not in report

    generation = report["manifest"]["generation"]
    assert generation["model"]["backend"] == "openai" and generation["model"]["model"] == "scripted"
    assert generation["prompts"]["multipl_e"].startswith("multipl_e.v1@") and generation["mode"] == "single"
    assert len(generation["fingerprint"]) == 16
    manifest = report["manifest"]
    assert manifest["benchmark_file"] == str(ROWS) and manifest["sandbox"]["backend"] == "bwrap"
    assert manifest["languages"] == sorted({it.language for it in ITEMS.values()})

    sent = model.sent_text()  # the hidden tests never reach the model
    assert all(item.test.strip() not in sent for item in ITEMS.values())
    assert "candidate" not in sent and "int main()" not in sent

    rows = read_jsonl(out)
    assert [r["task_id"] for r in rows] == list(ITEMS)
    assert {r["task_id"]: r["passed"] for r in rows} == passes
    assert all(r["solution"].startswith(ITEMS[r["task_id"]].prompt) or PLAN[r["task_id"]][0] == "bare" for r in rows)
    by_id = {r["task_id"]: r for r in rows}
    assert by_id["sh/mbpp_1003_max_of_three"]["fenced"] is False and by_id["cpp/mbpp_1003_max_of_three"]["fenced"]
    assert by_id["go/HumanEval_1001_sum_of_squares"]["language"] == "go"
    assert by_id["rs/HumanEval_1002_count_vowels"]["raw"].startswith("```rust\n")
    assert by_id["rs/HumanEval_1002_count_vowels"]["messages"][-1]["role"] == "assistant"
    failed = by_id["php/HumanEval_1001_sum_of_squares"]
    assert failed["status"] == "failed" and failed["result"].startswith("failed")

    # The samples file is a MultiPL-E sample file: `eval score` gives every row the same verdict.
    code = cli.main(["eval", "score", "--benchmark", "multipl-e", "--benchmark-file", str(ROWS), "--samples",
                     str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    rescored = json.loads(captured.out)
    assert rescored["per_task"] == report["per_task"] and rescored["extracted"] == {"solution": 18}


@pytest.mark.slow
def test_the_console_script_runs_a_file_of_several_languages(tmp_path):
    require_bwrap()
    model = ScriptedMultiPLEModel(ITEMS)
    out = tmp_path / "samples.jsonl"
    env = {**os.environ, "CRUCIBLE_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1"}
    with StubServer(StubState(responder=model)) as server:
        result = subprocess.run(CRUCIBLE + ["eval", "run", "--benchmark", "multipl-e-mbpp", "--benchmark-file",
                                            str(ROWS), "--model", "scripted", "--base-url", server.base_url,
                                            "--samples-out", str(out), "--quiet"],
                                capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.strip().splitlines()) == 1
    report = json.loads(result.stdout)
    assert report["benchmark"] == "multipl-e-mbpp" and report["pass@1"] == 1.0
    assert {lang: f["pass@1"] for lang, f in report["per_language"].items()} == {"bash": 1.0, "cpp": 1.0,
                                                                                 "javascript": 1.0}
    assert report["tasks_in_benchmark"] == 3 and report["manifest"]["programs_executed"] == 3
    rows = read_jsonl(out)
    assert [r["task_id"] for r in rows] == ["cpp/mbpp_1003_max_of_three", "js/mbpp_1003_max_of_three",
                                            "sh/mbpp_1003_max_of_three"]
    assert all(r["passed"] for r in rows) and len(model.requests) == 3


# -- refusals -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("args, message", [
    (["--mode", "exec_feedback"], "--mode exec_feedback is not available for MultiPL-E benchmarks"),
    (["--mode", "human_feedback"], "use --mode single"),
    (["--benchmark", "humaneval"], "--benchmark-file is for MultiPL-E benchmarks (multipl-e...), not humaneval"),
    (["--benchmark", "multipl-e-humaneval-cobol"], "unknown MultiPL-E language 'cobol'"),
    (["--benchmark", "multipl-e-mbpp-rs"], "has no rows for multipl-e-mbpp-rs"),
])
def test_what_cannot_run_is_refused_in_one_line_before_any_work(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.setenv("CRUCIBLE_HOME", str(tmp_path / "home"))
    model = ScriptedMultiPLEModel(ITEMS)
    with StubServer(StubState(responder=model)) as server:
        argv = ["eval", "run", "--benchmark", "multipl-e-humaneval", "--benchmark-file", str(ROWS), "--model",
                "scripted", "--base-url", server.base_url, *args]
        try:
            code = cli.main(argv)
        except SystemExit as exit_:  # argparse refuses a bad --benchmark itself
            code = exit_.code
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 2 and message in lines[-1] and captured.out == "", captured.err
    assert len(lines) == 1 or lines[0].startswith("usage: "), captured.err
    assert model.requests == []


def test_the_hub_offline_without_a_file_is_a_one_line_usage_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CRUCIBLE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code = cli.main(["eval", "run", "--benchmark", "multipl-e-humaneval-cpp", "--model", "scripted", "--base-url",
                     "http://127.0.0.1:9/v1"])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert captured.err.strip().splitlines()[-1].startswith("crucible: error: benchmark multipl-e-humaneval-cpp could "
                                                            "not be loaded from the Hub")
