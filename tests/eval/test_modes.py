"""`crucible eval run` in all three modes against a scripted OpenAI-compatible server: scores per mode, feedback
rounds, and that no hidden test ever reaches the model or the simulated user."""

import json

import pytest

import cli
from eval.benchmarks import load_benchmarks
from eval.visible_tests import hidden_only_asserts
from tests.eval.scripted_eval_model import ADVICE, LEAKED_CODE, ScriptedEvalModel, function_of
from tests.openai_stub_server import StubServer, StubState

HUMANEVAL = load_benchmarks(offline=["humaneval"])[:5]
MBPP = load_benchmarks(offline=["mbpp"])[:3]


def run_mode(tmp_path, monkeypatch, capsys, mode: str, benchmark: str = "humaneval", items=HUMANEVAL,
             extra=()) -> tuple[dict, ScriptedEvalModel, list[dict]]:
    monkeypatch.setenv("CRUCIBLE_HOME", str(tmp_path / "home"))
    model = ScriptedEvalModel(items)
    out = tmp_path / "samples.jsonl"
    with StubServer(StubState(responder=model)) as server:
        code = cli.main(["eval", "run", "--benchmark", benchmark, "--model", "scripted", "--base-url",
                         server.base_url, "--mode", mode, "--limit", str(len(items)), "--rounds", "2",
                         "--samples-out", str(out), *extra])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert len(captured.out.strip().splitlines()) == 1
    return json.loads(captured.out), model, [json.loads(line) for line in out.read_text().splitlines()]


def assert_no_hidden_test_was_sent(model: ScriptedEvalModel, items) -> None:
    sent = model.sent_text()
    for item in items:
        hidden = hidden_only_asserts(item)
        assert hidden, item.task_id
        leaked = [a for a in hidden if a in sent]
        assert leaked == [], item.task_id
    assert "def check(candidate)" not in sent and "candidate(" not in sent


def test_single_mode(tmp_path, monkeypatch, capsys):
    report, model, rows = run_mode(tmp_path, monkeypatch, capsys, "single")
    assert report["mode"] == "single" and report["pass@1"] == pytest.approx(1 / 5)
    assert report["per_task"] == {"HumanEval/0": 0.0, "HumanEval/1": 0.0, "HumanEval/2": 1.0, "HumanEval/3": 0.0,
                                  "HumanEval/4": 0.0}
    assert len(model.requests) == 5 and report["feedback"]["with_feedback"] == 0
    assert report["pass@1_by_round"] == [pytest.approx(0.2)]
    manifest = report["manifest"]
    model_info = manifest["generation"]["model"]
    assert model_info["backend"] == "openai" and model_info["model"] == "scripted"
    assert set(manifest["generation"]["prompts"]) == {"instruct"} and len(manifest["generation"]["fingerprint"]) == 16
    assert manifest["generation"]["prompts"]["instruct"].startswith("instruct.v1@")
    assert manifest["sandbox"]["backend"] == "bwrap" and manifest["versions"]["openai"]
    assert [r["task_id"] for r in rows] == [it.task_id for it in HUMANEVAL]
    assert [r["passed"] for r in rows] == [False, False, True, False, False]
    assert_no_hidden_test_was_sent(model, HUMANEVAL)


def test_exec_feedback_mode(tmp_path, monkeypatch, capsys):
    report, model, rows = run_mode(tmp_path, monkeypatch, capsys, "exec_feedback")
    # has_close_elements and separate_paren_groups are fixed after one round of feedback; below_zero passes its
    # visible examples (so gets no feedback) and fails the hidden tests; mean_absolute_deviation never recovers.
    assert report["per_task"] == {"HumanEval/0": 1.0, "HumanEval/1": 1.0, "HumanEval/2": 1.0, "HumanEval/3": 0.0,
                                  "HumanEval/4": 0.0}
    assert report["pass@1_by_round"] == [pytest.approx(0.2), pytest.approx(0.6), pytest.approx(0.6)]
    answers = {function_of(r): sum(m["role"] == "assistant" for m in r) + 1 for r in model.requests}
    assert answers == {"has_close_elements": 2, "separate_paren_groups": 2, "truncate_number": 1, "below_zero": 1,
                       "mean_absolute_deviation": 3}
    assert report["feedback"]["with_feedback"] == 3
    assert report["feedback"]["answers_per_conversation"] == {"1": 2, "2": 2, "3": 1}
    feedback = [m["content"] for r in model.requests for m in r[2:] if m["role"] == "user"]
    assert feedback and all(f.startswith("Execution result:") for f in feedback)
    by_function = {function_of(r): r for r in model.requests}
    close_feedback = by_function["has_close_elements"][3]["content"]
    assert "assert has_close_elements([1.0, 2.8, 3.0, 4.0, 5.0, 2.0], 0.3) == True  # got False" in close_feedback
    assert "SyntaxError" in by_function["separate_paren_groups"][3]["content"]
    assert [r["mode_answers"] for r in rows] == [2, 2, 1, 1, 3]
    assert [r["visible_statuses"] for r in rows] == [["failed", "passed"], ["failed", "passed"], ["passed"], ["passed"],
                                                     ["failed", "failed"]]
    assert set(report["manifest"]["generation"]["prompts"]) == {"instruct", "exec_feedback"}
    assert_no_hidden_test_was_sent(model, HUMANEVAL)


def test_human_feedback_mode(tmp_path, monkeypatch, capsys):
    report, model, rows = run_mode(tmp_path, monkeypatch, capsys, "human_feedback")
    assert report["mode"] == "human_feedback" and report["pass@1"] == pytest.approx(3 / 5)
    assert report["pass@1_by_round"] == [pytest.approx(0.2), pytest.approx(0.6), pytest.approx(0.6)]
    # The simulated user is asked about each failing answer: three after the first round, one after the second; that
    # last request repeats mean_absolute_deviation's first word for word (same code, same result), so the response
    # cache answers it and the server sees three.
    assert model.user_calls == 3 and report["feedback"]["answers_per_conversation"] == {"1": 2, "2": 2, "3": 1}
    user_requests = [r for r in model.requests if r not in model.model_requests()]
    assert all("What happened when I ran it" in r[1]["content"] for r in user_requests)
    revisions = [m["content"] for r in model.model_requests() for m in r[2:] if m["role"] == "user"]
    assert revisions and all(c.startswith(ADVICE) for c in revisions)
    # The user's code block is cut off: the model gets words, never code, and never the raw execution output.
    model_text = "\n".join(m["content"] for r in model.model_requests() for m in r)
    assert LEAKED_CODE not in model_text and "Execution result" not in model_text
    assert set(report["manifest"]["generation"]["prompts"]) == {"instruct", "human_feedback", "human_revision"}
    assert_no_hidden_test_was_sent(model, HUMANEVAL)


def test_exec_feedback_on_mbpp_shows_only_the_first_test(tmp_path, monkeypatch, capsys):
    report, model, rows = run_mode(tmp_path, monkeypatch, capsys, "exec_feedback", "mbpp", MBPP)
    assert report["pass@1"] == 1.0 and report["pass@1_by_round"][0] == 0.0
    first = MBPP[0]
    first_test = 'assert remove_Occ("hello","l") == "heo"'
    prompts = [r[1]["content"] for r in model.requests]
    assert any(first_test in p for p in prompts)
    assert_no_hidden_test_was_sent(model, MBPP)
    assert hidden_only_asserts(first)[0] not in model.sent_text()


def test_bad_model_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CRUCIBLE_HOME", str(tmp_path / "home"))
    assert cli.main(["eval", "run", "--benchmark", "humaneval", "--model", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not a local checkpoint folder" in err[0] and "--base-url" in err[0]


def test_execution_report_for_a_timeout_and_a_crash_at_import():
    from eval.modes import execution_report
    from eval.scoring import SandboxRunner
    from eval.visible_tests import visible_tests
    from resources.sandbox import Limits, SandboxPool

    item = HUMANEVAL[0]
    tests = visible_tests(item)
    loop = "def has_close_elements(numbers, threshold):\n    while True:\n        pass\n"
    crash = "import numpy_that_does_not_exist\n"
    with SandboxPool("bwrap", 1, Limits(timeout_s=1)) as pool:
        runner = SandboxRunner(pool, use_cache=False)
        timeout, missing = runner.run_checked([("loop", loop, tests.script()), ("crash", crash, tests.script())])
    assert timeout.status == "timeout"
    assert execution_report(timeout, tests).startswith("The code did not finish within 1 seconds")
    report = execution_report(missing, tests)
    assert report.startswith("The code failed (exit status 1).") and "ModuleNotFoundError" in report


@pytest.mark.parametrize("args, message", [
    (["--limit", "0"], "--limit must be >= 1"),
    (["--rounds", "-1"], "rounds must be >= 0"),
    (["--n-samples", "0"], "n_samples >= 1"),
])
def test_bad_run_options_are_one_line_errors(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.setenv("CRUCIBLE_HOME", str(tmp_path / "home"))
    assert cli.main(["eval", "run", "--benchmark", "humaneval", "--model", "m", "--base-url",
                     "http://127.0.0.1:9/v1", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
