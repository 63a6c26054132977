"""finetune/pipes_report.py: what a finished run reports to Dagster, and plain printing when no Dagster launched it
(the asset's side, through a real Pipes session, is in tests/assets/models/test_training.py)."""

import json
import math

from finetune.pipes_report import ERROR_PREFIX, checkpoint_metadata, logged_losses, trainer_report

SUMMARY = {"output_dir": "/home/c/checkpoints/cpu-tiny-1234abcd-5678ef90", "model_name": "cpu-tiny-1234abcd-5678ef90",
           "global_step": 3, "final_loss": float("inf"), "eval_loss": None,
           "loss_history": [{"step": 1, "epoch": 0.3, "loss": 2.0, "learning_rate": 1e-3},
                            {"step": 2, "epoch": 0.6, "grad_norm": 1.0},  # an entry without a loss
                            {"step": 3, "epoch": 1.0, "loss": float("inf")}]}


def test_the_report_carries_the_folder_the_summary_and_every_logged_loss():
    meta = checkpoint_metadata(SUMMARY)
    assert meta["checkpoint"] == {"raw_value": SUMMARY["output_dir"], "type": "path"}
    assert meta["losses"]["raw_value"] == [{"step": 1, "loss": 2.0}, {"step": 3, "loss": float("inf")}]
    assert meta["steps"] == {"raw_value": 3, "type": "int"}
    assert meta["final_loss"]["type"] == "float" and math.isinf(meta["final_loss"]["raw_value"])
    summary = meta["summary"]["raw_value"]
    assert "loss_history" not in summary and "output_dir" not in summary and summary["global_step"] == 3
    # Pipes sends JSON as Python writes it: an infinite loss arrives as one, for the asset's check to see.
    assert json.loads(json.dumps(meta))["losses"]["raw_value"][1]["loss"] == float("inf")
    assert checkpoint_metadata({**SUMMARY, "final_loss": None})["final_loss"] == {"raw_value": None, "type": "null"}
    assert logged_losses({"loss_history": []}) == []


def test_without_dagster_the_report_prints_as_the_trainer_always_did(capsys, monkeypatch):
    monkeypatch.delenv("DAGSTER_PIPES_CONTEXT", raising=False)
    with trainer_report() as report:
        assert report.pipes is None
        report.log("[train] step=1/2 loss=2.0")
        report.error(f"{ERROR_PREFIX}recipe x: unknown key")
        report.finished(SUMMARY)  # nothing to report to
    out, err = capsys.readouterr()
    assert out == "[train] step=1/2 loss=2.0\n" and err == "error: recipe x: unknown key\n"
