"""The checkpoint's model card: README.md whose YAML front matter is huggingface_hub's `ModelCardData` — license,
base_model, datasets, library_name, pipeline_tag, tags and, once scored, a `model-index` of `EvalResult`s the Hub shows
as evaluation results — and whose text gives the base, dataset, recipe, hyperparameters, training figures and an
evaluation section ("not yet evaluated" until scores are known).

    text = render_card(summary)                              # summary: the dict written as training_summary.json
    text = render_card(summary, results, dataset_id="me/crucible-sft", model_name="me/crucible-coder")
    text = checkpoint_card(folder, results, dataset_id, model_name)    # the same, from the folder's summary
    set_eval_results(folder / "README.md", results)          # model-index and the evaluation section of a card
    set_eval_scores(folder / "README.md", {"humaneval pass@1": 0.31})  # the evaluation section only

`results`: benchmark_scores rows of the checkpoint (benchmark, mode, pass_at_1, tasks, ci95_low, ci95_high). Each
becomes an EvalResult: task text-generation, the benchmark's Hub dataset (a run over the first N tasks only is the
split `test[:N]`), metric pass@1 named by the mode.

The licence is the base model's: the one Crucible knows for the bases its recipes name (KNOWN_BASES), else the base
folder's own card's, else `unknown`; a model trained from scratch (the tiny base) takes Crucible's licence and the
`from-scratch` tag, having no base_model. `datasets` is the Hub dataset the model was trained on: the one its training
data was downloaded from (finetune/data.py), else `dataset_id` (the repo the release is published to).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from finetune.data import hub_source
from resources.hub_validate import FROM_SCRATCH_TAG

EVAL_START, EVAL_END = "<!-- eval-scores:start -->", "<!-- eval-scores:end -->"
NOT_EVALUATED = "Not yet evaluated."
SUMMARY_FILE = "training_summary.json"
CRUCIBLE_LICENSE = "apache-2.0"  # pyproject.toml's: the licence of weights Crucible initialises itself
# Licences of the bases Crucible's recipes and bundled GGUFs name (their Hub cards).
KNOWN_BASES = {
    "Qwen/Qwen2.5-Coder-7B": "apache-2.0",
    "Qwen/Qwen2.5-Coder-7B-Instruct": "apache-2.0",
    "Qwen/Qwen2.5-Coder-1.5B-Instruct": "apache-2.0",
    "HuggingFaceTB/SmolLM2-135M-Instruct": "apache-2.0",
}
# The Hub model a bundled GGUF (recipe base.gguf_file, up to the first '.') was quantized from.
GGUF_ORIGINS = {"SmolLM2-135M-Instruct": "HuggingFaceTB/SmolLM2-135M-Instruct"}
# benchmark -> (Hub dataset id, display name, config, split, tasks in the split).
BENCHMARK_DATASETS = {
    "humaneval": ("openai/openai_humaneval", "HumanEval", None, "test", 164),
    "mbpp": ("google-research-datasets/mbpp", "MBPP", "full", "test", 500),
    "humaneval_plus": ("evalplus/humanevalplus", "HumanEval+", None, "test", 164),
    "mbpp_plus": ("evalplus/mbppplus", "MBPP+", None, "test", 378),
}
MODES = {"single": "pass@1", "exec_feedback": "pass@1 with execution feedback",
         "human_feedback": "pass@1 with simulated human feedback"}


def _is_hub_id(value: str | None) -> bool:
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(value)
    except (HFValidationError, TypeError):
        return False
    return bool(value)


def base_model_id(summary: dict) -> str | None:
    """The Hub id of the model fine-tuned; None for a model trained from scratch or a local base of unknown origin."""
    base = summary.get("recipe", {}).get("base", {})
    if base.get("kind") == "tiny":
        return None
    if base.get("kind") == "gguf":
        return GGUF_ORIGINS.get(Path(base.get("gguf_file") or "").name.split(".")[0])
    if summary.get("base_is_hub_id"):
        return summary["base_model"]
    cached = hub_source(summary.get("base_model") or "", "model")  # a base in the huggingface_hub cache
    return cached[0] if cached else None


def model_license(summary: dict, base_id: str | None) -> str:
    """The base's licence when known (KNOWN_BASES, else the base folder's card), Crucible's for a model trained from
    scratch, else `unknown`."""
    if summary.get("recipe", {}).get("base", {}).get("kind") == "tiny":
        return CRUCIBLE_LICENSE
    if base_id in KNOWN_BASES:
        return KNOWN_BASES[base_id]
    readme = Path(summary.get("base_model") or "") / "README.md"
    if readme.is_file():
        from huggingface_hub import ModelCard

        try:
            license_id = ModelCard.load(readme, ignore_metadata_errors=True).data.license
        except Exception:  # a base card that does not parse says nothing about the licence
            license_id = None
        if isinstance(license_id, str) and license_id:
            return license_id
    return "unknown"


def dataset_ids(summary: dict, dataset_id: str | None) -> list[str] | None:
    source = hub_source(summary.get("dataset") or "")
    if source:
        return [source[0]]
    return [dataset_id] if _is_hub_id(dataset_id) else None


def eval_results(results: list[dict]):
    """huggingface_hub EvalResults of benchmark_scores rows (unknown benchmarks are left out)."""
    from huggingface_hub import EvalResult

    out = []
    for row in results:
        if row.get("benchmark") not in BENCHMARK_DATASETS or row.get("pass_at_1") is None:
            continue
        dataset, name, config, split, size = BENCHMARK_DATASETS[row["benchmark"]]
        tasks = row.get("tasks") or size
        out.append(EvalResult(
            task_type="text-generation", task_name="Code generation",
            dataset_type=dataset, dataset_name=name if tasks >= size else f"{name} (first {tasks} of {size} tasks)",
            dataset_config=config, dataset_split=split if tasks >= size else f"{split}[:{tasks}]",
            metric_type="pass@1", metric_value=round(float(row["pass_at_1"]), 4),
            metric_name=MODES.get(row.get("mode") or "single", f"pass@1 ({row.get('mode')})"), verified=False))
    return out


def card_data(summary: dict, results: list[dict] | None = None, dataset_id: str | None = None,
              model_name: str | None = None):
    """The card's ModelCardData."""
    from huggingface_hub import ModelCardData

    base_id = base_model_id(summary)
    from_scratch = summary.get("recipe", {}).get("base", {}).get("kind") == "tiny"
    tags = ["crucible", "trl", "sft", "code"] + (["lora", "peft"] if summary["method"] == "lora" else []) \
        + ([FROM_SCRATCH_TAG] if from_scratch else [])
    evals = eval_results(results or [])
    return ModelCardData(
        license=model_license(summary, base_id), base_model=base_id, datasets=dataset_ids(summary, dataset_id),
        library_name="transformers", pipeline_tag="text-generation", language=["code", "en"], tags=tags,
        model_name=(model_name or summary["model_name"]) if evals else None, eval_results=evals or None)


def _fmt(value) -> str:
    return f"{value:.3f}" if isinstance(value, float) else "—" if value is None else str(value)


def _results_block(results: list[dict] | None) -> str:
    if not results:
        return f"{EVAL_START}\n{NOT_EVALUATED}\n{EVAL_END}"
    lines = ["| benchmark | mode | pass@1 | 95% CI | tasks |", "|---|---|---|---|---|"]
    lines += [f"| {BENCHMARK_DATASETS.get(r['benchmark'], (None, r['benchmark']))[1]} | {r.get('mode', 'single')} | "
              f"{_fmt(r.get('pass_at_1'))} | {_fmt(r.get('ci95_low'))}–{_fmt(r.get('ci95_high'))} | "
              f"{_fmt(r.get('tasks'))} |" for r in results]
    return f"{EVAL_START}\n" + "\n".join(lines) + f"\n{EVAL_END}"


def _scores_block(scores: dict[str, float] | None) -> str:
    if not scores:
        body = NOT_EVALUATED
    else:
        body = "| benchmark | score |\n|---|---|\n" + "\n".join(f"| {k} | {v:.4g} |" if isinstance(v, float)
                                                               else f"| {k} | {v} |" for k, v in scores.items())
    return f"{EVAL_START}\n{body}\n{EVAL_END}"


def _dataset_line(summary: dict, data) -> str:
    source = hub_source(summary["dataset"])
    where = f"`{source[0]}` (Hub dataset, commit `{source[1][:12]}`)" if source else f"`{summary['dataset']}`"
    published = "" if source or not data.datasets else f", published as `{data.datasets[0]}`"
    return (f"{where}{published}, fingerprint `{summary['dataset_fingerprint']}` (sha256 of its Parquet files),\n"
            f"  {summary['train_rows']} training dialogues")


def _base_line(summary: dict, data) -> str:
    line = f"`{summary['base_model']}`" + (f" ({summary['base_source']})" if summary.get("base_source") else "")
    if data.base_model and data.base_model != summary["base_model"]:
        line += f", from `{data.base_model}`"
    return line


def render_card(summary: dict, results: list[dict] | None = None, dataset_id: str | None = None,
                model_name: str | None = None) -> str:
    """The README.md text. `results`: benchmark_scores rows of this checkpoint; `dataset_id`: the Hub dataset repo
    the training data is published in (when it was not downloaded from one); `model_name`: the name in model-index
    (the model repo id when it has one; default the checkpoint's name)."""
    from huggingface_hub import ModelCard

    data = card_data(summary, results, dataset_id, model_name)
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
    licence_origin = ("Crucible's own: the weights were initialised at random" if FROM_SCRATCH_TAG in data.tags
                      else "the base model's")
    body = f"""
# {summary['model_name']}

Fine-tuned by Crucible (`python -m finetune.train --recipe {recipe['name']}`) with TRL's SFTTrainer, loss on assistant
tokens only.

- **Base model:** {_base_line(summary, data)}
- **Method:** {summary['method']} fine-tuning
- **Dataset:** {_dataset_line(summary, data)}
- **Recipe:** `{recipe['name']}`, fingerprint `{summary['recipe_fingerprint']}`
- **Chat template:** {summary['chat_template']}
- **Licence:** `{data.license}` ({licence_origin}); the training data's seed licences are listed in the dataset's
  card

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

{_results_block(results)}
"""
    return ModelCard(f"---\n{data.to_yaml()}\n---\n{body}").content


def checkpoint_card(folder: str | Path, results: list[dict] | None = None, dataset_id: str | None = None,
                    model_name: str | None = None) -> str:
    """render_card from the checkpoint folder's training_summary.json."""
    path = Path(folder) / SUMMARY_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no training summary to write the model card from; retrain the checkpoint")
    return render_card(json.loads(path.read_text()), results, dataset_id, model_name)


def _replace_block(text: str, block: str, card: Path) -> str:
    pattern = re.compile(re.escape(EVAL_START) + r".*?" + re.escape(EVAL_END), re.S)
    if not pattern.search(text):
        raise ValueError(f"{card}: no evaluation section to update")
    return pattern.sub(lambda _: block, text)


def set_eval_results(card: str | Path, results: list[dict], model_name: str | None = None) -> None:
    """Put `results` (benchmark_scores rows) into an existing card: its model-index and its evaluation section."""
    from huggingface_hub import ModelCard

    card = Path(card)
    loaded = ModelCard.load(card)
    evals = eval_results(results)
    loaded.data.eval_results = evals or None
    loaded.data.model_name = (model_name or loaded.data.model_name or card.parent.name) if evals else None
    loaded.text = _replace_block(loaded.text, _results_block(results), card)
    card.write_text(ModelCard(f"---\n{loaded.data.to_yaml()}\n---\n{loaded.text}").content)


def set_eval_scores(card: str | Path, scores: dict[str, float]) -> None:
    """Replace the evaluation section of an existing card with `scores` (name -> value); the front matter stays."""
    card = Path(card)
    card.write_text(_replace_block(card.read_text(), _scores_block(scores), card))
