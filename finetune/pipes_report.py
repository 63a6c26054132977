"""What the trainer tells Dagster when Dagster launched it through Pipes (the finetuned_checkpoint asset does).

    with trainer_report() as report:
        summary = run_recipe(..., log=report.log)   # each progress line: a Dagster log line
        report.finished(summary)                     # the checkpoint, its summary and every logged loss
    report.error("error: ...")                       # a one-line failure, for the asset's own failure message

Under Pipes (`DAGSTER_PIPES_CONTEXT` in the environment) progress lines go to the run's log as they come and the
finished run is reported as the asset's materialization: `checkpoint` (the output folder), `summary`
(training_summary.json's content without the loss history), `losses` (step and loss of every logged step),
`final_loss` and `steps`. Run by hand, with no Pipes context, the report only prints, exactly as before: progress to
stdout, errors to stderr. A crash under Pipes is also logged as one `error:` line before it propagates.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from dagster_pipes import PipesContext, PipesEnvVarParamsLoader, open_dagster_pipes

ERROR_PREFIX = "error: "  # the start of the trainer's one-line failures, on stderr and in the run's log


class TrainerReport:
    """Where the trainer's progress, failure and result go: a Pipes context when there is one, else stdout/stderr."""

    def __init__(self, pipes: PipesContext | None = None) -> None:
        self.pipes = pipes

    def log(self, line: str) -> None:
        if self.pipes is None:
            print(line, flush=True)
        else:
            self.pipes.log.info(line)

    def error(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)
        if self.pipes is not None:
            self.pipes.log.error(message)

    def finished(self, summary: dict) -> None:
        if self.pipes is not None:
            self.pipes.report_asset_materialization(metadata=checkpoint_metadata(summary))


def logged_losses(summary: dict) -> list[dict]:
    """{"step", "loss"} of every logged training step in a run's summary, in order."""
    return [{"step": entry.get("step"), "loss": entry["loss"]} for entry in summary.get("loss_history", [])
            if "loss" in entry]


def checkpoint_metadata(summary: dict) -> dict:
    """The materialization metadata of a finished run (`summary` as finetune.sft_run.run returns it), typed for Pipes.
    Losses keep NaN and infinities (JSON as Python writes it) so the asset's check can see them."""
    final = summary.get("final_loss")
    return {
        "checkpoint": {"raw_value": summary["output_dir"], "type": "path"},
        "summary": {"raw_value": {k: v for k, v in summary.items() if k not in ("loss_history", "output_dir")},
                    "type": "json"},
        "losses": {"raw_value": logged_losses(summary), "type": "json"},
        "final_loss": {"raw_value": final, "type": "null" if final is None else "float"},
        "steps": {"raw_value": summary.get("global_step"), "type": "int"},
    }


@contextmanager
def trainer_report() -> Iterator[TrainerReport]:
    """A TrainerReport for this process: through Dagster Pipes when Dagster launched it, plain printing otherwise."""
    params = PipesEnvVarParamsLoader()
    if not params.is_dagster_pipes_process():
        yield TrainerReport()
        return
    with open_dagster_pipes(params_loader=params) as pipes:
        report = TrainerReport(pipes)
        try:
            yield report
        except Exception as exc:  # logged for the asset's failure message; the traceback still goes to stderr
            pipes.log.error(f"{ERROR_PREFIX}{type(exc).__name__}: {' '.join(str(exc).split())}")
            raise
