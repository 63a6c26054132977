"""The checkpoint's model card (README.md with Hub front matter): base model, dataset and its fingerprint, recipe,
hyperparameters, training figures, and an evaluation section that says "not yet evaluated" until scores are known.

    text = render_card(summary)                      # summary: the dict written as training_summary.json
    set_eval_scores(folder / "README.md", {"humaneval pass@1": 0.31})   # later, by the evaluation step
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

EVAL_START, EVAL_END = "<!-- eval-scores:start -->", "<!-- eval-scores:end -->"
NOT_EVALUATED = "Not yet evaluated."


def _front_matter(summary: dict) -> str:
    meta = {"base_model": summary["base_model"]} if summary.get("base_is_hub_id") else {}
    meta |= {
        "library_name": "transformers",
        "pipeline_tag": "text-generation",
        "tags": ["crucible", "trl", "sft", "code"] + (["lora", "peft"] if summary["method"] == "lora" else []),
    }
    return "---\n" + yaml.safe_dump(meta, sort_keys=False) + "---\n"


def _eval_block(scores: dict[str, float] | None) -> str:
    if not scores:
        body = NOT_EVALUATED
    else:
        body = "| benchmark | score |\n|---|---|\n" + "\n".join(f"| {k} | {v:.4g} |" if isinstance(v, float)
                                                               else f"| {k} | {v} |" for k, v in scores.items())
    return f"{EVAL_START}\n{body}\n{EVAL_END}"


def render_card(summary: dict, scores: dict[str, float] | None = None) -> str:
    recipe = summary["recipe"]
    train = recipe["train"]
    losses = [entry["loss"] for entry in summary["loss_history"] if "loss" in entry]
    rows = "\n".join(f"| {key} | {value} |" for key, value in train.items())
    lora = ""
    if summary["method"] == "lora":
        lora = ("\nLoRA: " + ", ".join(f"{k}={v}" for k, v in recipe["lora"].items())
                + ". The adapter is in `adapter/`" + ("; the folder root holds it merged into the base weights.\n"
                                                          if recipe["lora"]["merge"] else ".\n"))
    eval_loss = summary.get("eval_loss")
    return f"""{_front_matter(summary)}
# {summary['model_name']}

Fine-tuned by Crucible (`python -m finetune.train --recipe {recipe['name']}`) with TRL's SFTTrainer, loss on assistant
tokens only.

- **Base model:** `{summary['base_model']}`{f" ({summary['base_source']})" if summary.get('base_source') else ""}
- **Method:** {summary['method']} fine-tuning
- **Dataset:** `{summary['dataset']}`, fingerprint `{summary['dataset_fingerprint']}` (sha256 of its Parquet files),
  {summary['train_rows']} training dialogues
- **Recipe:** `{recipe['name']}`, fingerprint `{summary['recipe_fingerprint']}`
- **Chat template:** {summary['chat_template']}

## Hyperparameters

| name | value |
|---|---|
{rows}
{lora}
## Training

- steps: {summary['global_step']} of {summary['max_steps']}, epochs: {summary['epoch']:.3g}
- tokens seen: {summary['tokens_seen']:,}; this session {summary['tokens_per_second']:.1f} tokens/s over
  {summary['wall_seconds']:.1f} s on {summary['device']} ({summary['precision']})
- training loss: first {losses[0] if losses else float('nan'):.4f}, last {losses[-1] if losses else float('nan'):.4f}
- test loss: {f"{eval_loss:.4f}" if eval_loss is not None else "not measured"}

The per-step loss history is in `training_summary.json`.

## Evaluation

{_eval_block(scores)}
"""


def set_eval_scores(card: str | Path, scores: dict[str, float]) -> None:
    """Replace the evaluation section of an existing card with `scores`."""
    card = Path(card)
    text = card.read_text()
    pattern = re.compile(re.escape(EVAL_START) + r".*?" + re.escape(EVAL_END), re.S)
    if not pattern.search(text):
        raise ValueError(f"{card}: no evaluation section to update")
    card.write_text(pattern.sub(lambda _: _eval_block(scores), text))
