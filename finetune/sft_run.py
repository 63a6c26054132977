"""One supervised fine-tuning run: recipe + sft_dataset folder -> trained model, tokenizer, summary and model card.

    summary = run(load_recipe("cpu-tiny"), dataset_dir, output_dir, max_steps=4, log=print)
    summary = run_recipe("cpu-tiny", dataset=None, base=None, ...)   # what `python -m finetune.train` does

A run resumes from the newest checkpoint-N in the output folder by itself (`resume=True` makes a missing one an
error, a path names one; see finetune/resume.py), and a run that already reached its last step trains nothing. The
output folder ends up holding the model (LoRA: merged, the adapter in adapter/), its tokenizer with the training chat
template, README.md (the model card) and training_summary.json. Stages log `[setup]`, `[train]`, `[eval]`, `[save]`
and `[done]` lines. USER_ERRORS are the one-line errors of a bad recipe, dataset, template or resume.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

# OpenMP threads that sleep instead of spinning between parallel regions. On a 2-core machine shared with other work
# (the teacher server, the sandbox, a test run) spinning threads starve each other: measured here under load, SmolLM2
# LoRA fell from ~90 to ~7 tokens/s with the default policy and ran at ~38 with PASSIVE; the tiny model went from
# ~155 to ~5,000 tokens/s. Read once when torch loads, so it only applies to a process that imports this first
# (`python -m finetune.train`, the Dagster asset's subprocess); an explicit OMP_WAIT_POLICY wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from finetune.chat_template import ChatTemplateError  # noqa: E402
from finetune.data import DatasetError, dataset_fingerprint, resolve_dataset  # noqa: E402
from finetune.recipe import Recipe, RecipeError, load_recipe, parse_recipe  # noqa: E402
from finetune.resume import ResumeError, checkpoint_tokens, find_checkpoint, finished_summary, record_run  # noqa: E402
from finetune.sft_trainer import build_trainer, default_output  # noqa: E402
from finetune.smollm2 import GGUFBaseError  # noqa: E402
from finetune.summary import training_summary, write_summary  # noqa: E402

USER_ERRORS = (RecipeError, DatasetError, ChatTemplateError, GGUFBaseError, ResumeError)


def run(recipe: Recipe, dataset_dir: str | Path, output_dir: str | Path | None = None, max_steps: int | None = None,
        resume: str | bool | None = None, models_dir: str | Path | None = None, log=print) -> dict:
    """Train `recipe` on the dataset folder; returns the summary also written to <output>/training_summary.json, with
    `output_dir` (the output folder, absolute) added."""
    t_begin = time.perf_counter()
    data_fp = dataset_fingerprint(dataset_dir)
    output_dir = Path(output_dir) if output_dir else default_output(recipe, data_fp)
    checkpoint = find_checkpoint(output_dir, resume)
    record_run(output_dir, {"recipe_fingerprint": recipe.fingerprint(), "dataset_fingerprint": data_fp}, checkpoint)
    finished = finished_summary(output_dir, checkpoint, recipe.train.max_steps if max_steps is None else max_steps)
    if finished is not None:
        log(f"[done] already trained to step {finished['global_step']}: nothing to do output={output_dir}")
        return {**finished, "output_dir": str(output_dir.resolve())}
    prep = build_trainer(recipe, dataset_dir, output_dir, max_steps, models_dir, log=log)
    trainer = prep.trainer
    tokens_before = 0
    if checkpoint:
        log(f"[setup] resuming from {checkpoint}")
        tokens_before = checkpoint_tokens(checkpoint)
    t_train = time.perf_counter()
    trainer.train(resume_from_checkpoint=checkpoint)
    train_seconds = time.perf_counter() - t_train

    eval_loss = None
    if prep.test_rows:
        eval_loss = trainer.evaluate().get("eval_loss")
        log(f"[eval] test_loss={eval_loss:.4f}" if eval_loss is not None else "[eval] no test loss")

    save_model(trainer, prep.tokenizer, recipe, output_dir, log)
    summary = training_summary(recipe, prep, checkpoint, tokens_before, train_seconds,
                               time.perf_counter() - t_begin, eval_loss)
    losses = summary["loss_history"]
    if losses and not all(math.isfinite(entry["loss"]) for entry in losses):
        log("[warn] the loss history has non-finite values")
    write_summary(output_dir, summary)
    log(f"[done] steps={summary['global_step']} tokens={summary['tokens_seen']} "
        f"tok_per_s={summary['tokens_per_second']:.1f} wall_s={train_seconds:.1f} final_loss={summary['final_loss']} "
        f"output={output_dir}")
    return {**summary, "output_dir": str(output_dir.resolve())}


def save_model(trainer, tokenizer, recipe: Recipe, output_dir: Path, log) -> None:
    """The model at the output root (LoRA: merged), LoRA adapter in adapter/, tokenizer beside each."""
    if recipe.method == "lora":
        adapter_dir = output_dir / "adapter"
        trainer.model.save_pretrained(adapter_dir)
        tokenizer.save_pretrained(adapter_dir)
        log(f"[save] adapter -> {adapter_dir}")
        if recipe.lora.merge:
            merged = trainer.model.merge_and_unload()
            merged.save_pretrained(output_dir)
            tokenizer.save_pretrained(output_dir)
            log(f"[save] merged model -> {output_dir}")
    else:
        trainer.save_model(str(output_dir))
        tokenizer.save_pretrained(output_dir)
        log(f"[save] model -> {output_dir}")


def quiet_libraries() -> None:
    """No progress bars from datasets and transformers: the `[train]` lines are the progress."""
    import warnings

    import datasets
    from transformers.utils import logging as hf_logging

    os.environ.setdefault("TQDM_DISABLE", "1")  # the GGUF conversion's bar is plain tqdm
    # transformers 5.23 renamed gradient checkpointing; PEFT and TRL still call the old names once per run
    warnings.filterwarnings("ignore", message=r".*gradient_checkpointing.*deprecated", category=FutureWarning)
    datasets.disable_progress_bars()
    hf_logging.set_verbosity_warning()
    hf_logging.disable_progress_bar()


def _with_base(recipe: Recipe, base: str) -> Recipe:
    data = recipe.canonical()
    data["base"] = {"kind": "pretrained", "path": base, "attn_implementation": recipe.base.attn_implementation}
    return parse_recipe(data, f"{recipe.name} with --base {base}")


def run_recipe(recipe: str | Path, dataset: str | Path | None = None, output: str | Path | None = None,
               max_steps: int | None = None, resume: str | bool | None = None, base: str | None = None,
               models_dir: str | Path | None = None, log=print) -> dict:
    """`run` for a recipe file or bundled recipe name, with `base` (a local folder or hub id) replacing its base and
    `dataset` (a folder, or a Hub dataset id[@revision]: finetune/data.py) its default dataset; no progress bars
    from the libraries. Raises one of USER_ERRORS on bad input."""
    loaded = load_recipe(recipe)
    if base:
        loaded = _with_base(loaded, base)
    dataset = dataset or loaded.dataset
    if not dataset:
        raise RecipeError(f"recipe {loaded.name}: no dataset; give --dataset DIR")
    quiet_libraries()
    return run(loaded, resolve_dataset(dataset), output, max_steps, resume, models_dir, log=log)
