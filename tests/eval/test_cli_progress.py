"""`crucible eval run` with progress shown: a local checkpoint's batches move a bar named for the round, and the
answers are the same as without progress."""

from __future__ import annotations

import io
import json

import cli
from resources import progress
from tests.eval.test_backends import tiny_checkpoint


def test_eval_run_progress_by_round_changes_no_answer(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CRUCIBLE_HOME", str(tmp_path / "home"))
    checkpoint = tiny_checkpoint(tmp_path / "model")
    args = ["eval", "run", "--benchmark", "humaneval", "--model", str(checkpoint), "--limit", "3", "--max-tokens", "6",
            "--mode", "exec_feedback", "--rounds", "1", "--batch-size", "2", "--no-cache"]
    assert cli.main([*args, "--samples-out", str(tmp_path / "plain.jsonl")]) == 0
    capsys.readouterr()
    shown = io.StringIO()
    progress.enable(shown)
    try:
        assert cli.main([*args, "--samples-out", str(tmp_path / "shown.jsonl")]) == 0
    finally:
        progress.disable()
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 1 and json.loads(captured.out)["tasks_scored"] == 3
    text = shown.getvalue()
    assert "crucible eval: 3 humaneval tasks x 1 sample(s), mode exec_feedback" in text
    assert "answers, round 1: 100%" in text and "3/3" in text
    assert "crucible eval: scoring the answers of every round in the sandbox" in text
    plain, with_bars = ([json.loads(line)["raw"] for line in (tmp_path / name).read_text().splitlines()]
                        for name in ("plain.jsonl", "shown.jsonl"))
    assert plain == with_bars
