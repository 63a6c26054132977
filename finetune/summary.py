"""What a finished run says about itself: training_summary.json and the model card (README.md) in its output folder.

    summary = training_summary(recipe, prep, checkpoint, tokens_before, train_seconds, total_seconds, eval_loss)
    write_summary(output_dir, summary)      # training_summary.json, and README.md rendered by finetune/model_card.py

The summary names the base, dataset (with its fingerprint), recipe (canonical, with its fingerprint) and chat template,
and records steps, tokens, tokens/s of this session, the per-step loss history, the test loss, device, precision, seed
and library versions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from finetune.model_card import render_card
from finetune.recipe import Recipe

if TYPE_CHECKING:
    from finetune.sft_trainer import Prepared

SUMMARY_FILE = "training_summary.json"
LOSS_KEYS = ("step", "epoch", "loss", "learning_rate", "grad_norm", "num_input_tokens_seen")


def loss_history(log_history: list[dict]) -> list[dict]:
    """The trainer's log entries that carry a loss, with LOSS_KEYS only."""
    return [{k: entry[k] for k in LOSS_KEYS if k in entry} for entry in log_history if "loss" in entry]


def versions() -> dict:
    import peft
    import torch
    import transformers
    import trl

    return {"torch": torch.__version__, "transformers": transformers.__version__, "trl": trl.__version__,
            "peft": peft.__version__}


def training_summary(recipe: Recipe, prep: Prepared, checkpoint: str | None, tokens_before: int,
                     train_seconds: float, total_seconds: float, eval_loss: float | None) -> dict:
    """The summary of a run whose trainer (prep.trainer) has trained, resumed from `checkpoint` (None: from the
    start) at which `tokens_before` input tokens had been seen."""
    trainer = prep.trainer
    state = trainer.state
    session_tokens = state.num_input_tokens_seen - tokens_before
    losses = loss_history(state.log_history)
    return {
        "model_name": prep.output_dir.name,
        "base_model": prep.base,
        "base_source": prep.base_source,
        "base_is_hub_id": prep.base_is_hub_id,
        "method": recipe.method,
        "dataset": str(prep.dataset_dir),
        "dataset_fingerprint": prep.dataset_fingerprint,
        "train_rows": prep.train_rows,
        "test_rows": prep.test_rows,
        "recipe": recipe.canonical(),
        "recipe_fingerprint": recipe.fingerprint(),
        "chat_template": prep.template_source,
        "max_steps": state.max_steps,
        "global_step": state.global_step,
        "epoch": state.epoch or 0.0,
        "resumed_from": checkpoint,
        "tokens_seen": state.num_input_tokens_seen,
        "session_tokens": session_tokens,
        "tokens_per_second": session_tokens / train_seconds if train_seconds > 0 else 0.0,
        "wall_seconds": train_seconds,
        "total_seconds": total_seconds,
        "loss_history": losses,
        "final_loss": losses[-1]["loss"] if losses else None,
        "eval_loss": eval_loss,
        "device": str(trainer.args.device),
        "precision": prep.precision,
        "seed": recipe.train.seed,
        "versions": versions(),
    }


def write_summary(output_dir: Path, summary: dict) -> None:
    (output_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    (output_dir / "README.md").write_text(render_card(summary))
