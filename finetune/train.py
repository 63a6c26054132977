"""Supervised fine-tuning on the pipeline's sft_dataset with TRL's SFTTrainer: the thin entry point of finetune/.

    python -m finetune.train --recipe finetune/recipes/cpu-tiny.yaml --dataset DIR [--output DIR] [--max-steps N]
                             [--resume [CHECKPOINT]] [--base PATH_OR_HUB_ID] [--models-dir DIR]

Full fine-tuning or LoRA (recipe `method`), loss on assistant tokens only (see finetune/chat_template.py), optional
packing, bf16 on a GPU, fixed seeds. A run resumes from the newest checkpoint-N in the output folder by itself
(`--resume` makes a missing one an error, `--resume PATH` names one). The output folder ends up holding the model
(LoRA: merged, the adapter in adapter/), its tokenizer with the training chat template, README.md (the model card) and
training_summary.json. Progress goes to stdout as `[train] key=value ...` lines, one per logging step, for the
Dagster asset to stream. Exit status 2 with one line on stderr for a bad recipe, dataset or template.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

# OpenMP threads that sleep instead of spinning between parallel regions. On a 2-core machine shared with other work
# (the teacher server, the sandbox, a test run) spinning threads starve each other: measured here under load, SmolLM2
# LoRA fell from ~90 to ~7 tokens/s with the default policy and ran at ~38 with PASSIVE; the tiny model went from
# ~155 to ~5,000 tokens/s. Read once when torch loads, so it only applies to a process that imports this first
# (`python -m finetune.train`, the Dagster asset's subprocess); an explicit OMP_WAIT_POLICY wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

from finetune.chat_template import ChatTemplateError  # noqa: E402
from finetune.data import DatasetError  # noqa: E402
from finetune.recipe import Recipe, RecipeError, load_recipe, parse_recipe  # noqa: E402
from finetune.smollm2 import GGUFBaseError  # noqa: E402
from resources.home import crucible_home  # noqa: E402

SUMMARY_FILE = "training_summary.json"
RUN_FILE = "crucible_run.json"  # the recipe and dataset the checkpoints in an output folder come from
USER_ERRORS = (RecipeError, DatasetError, ChatTemplateError, GGUFBaseError)


class ResumeError(ValueError):
    """No checkpoint where --resume asked for one, or the output folder's checkpoints come from another recipe or
    dataset (a --base override changes the recipe). One line."""


def precision(recipe: Recipe) -> str:
    if recipe.train.precision != "auto":
        return recipe.train.precision
    return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "fp32"


def model_dtype(recipe: Recipe, precision_name: str) -> torch.dtype:
    if recipe.train.model_dtype != "auto":
        return getattr(torch, recipe.train.model_dtype)
    return torch.bfloat16 if precision_name == "bf16" and recipe.method == "lora" else torch.float32


def default_output(recipe: Recipe, dataset_fp: str) -> Path:
    return crucible_home() / "checkpoints" / f"{recipe.name}-{recipe.fingerprint()[:8]}-{dataset_fp[:8]}"


def sft_config(recipe: Recipe, output_dir: Path, max_steps: int, precision_name: str):
    from trl import SFTConfig

    t = recipe.train
    # transformers 5.23 renamed gradient checkpointing; setting the new name keeps TRL's default (True) for the old one
    # out of play. Older transformers only know the old name.
    renamed = "activation_checkpointing" in SFTConfig.__dataclass_fields__
    checkpointing = {"activation_checkpointing" if renamed else "gradient_checkpointing": t.gradient_checkpointing}
    return SFTConfig(
        **checkpointing,
        output_dir=str(output_dir),
        learning_rate=t.learning_rate,
        num_train_epochs=t.num_train_epochs,
        max_steps=max_steps,
        per_device_train_batch_size=t.per_device_train_batch_size,
        per_device_eval_batch_size=t.per_device_eval_batch_size,
        gradient_accumulation_steps=t.gradient_accumulation_steps,
        max_length=t.max_length,
        packing=t.packing,
        packing_strategy=t.packing_strategy,
        lr_scheduler_type=t.lr_scheduler_type,
        warmup_steps=t.warmup_steps,
        weight_decay=t.weight_decay,
        max_grad_norm=t.max_grad_norm if t.max_grad_norm is not None else 0.0,  # 0: no clipping
        optim=t.optim,
        logging_steps=t.logging_steps,
        save_strategy="steps",
        save_steps=t.save_steps,
        save_total_limit=t.save_total_limit,
        seed=t.seed,
        data_seed=t.seed,
        bf16=precision_name == "bf16",
        use_cpu=not torch.cuda.is_available(),  # else transformers refuses bf16 (autocast) on a CPU-only machine
        fp16=False,
        assistant_only_loss=True,
        completion_only_loss=False,
        include_num_input_tokens_seen="non_padding",
        eval_strategy="no",
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
        dataloader_pin_memory=torch.cuda.is_available(),
        save_only_model=False,  # optimizer and scheduler state too, so a resumed run continues exactly
    )


def lora_config(recipe: Recipe):
    if recipe.method != "lora":
        return None
    from peft import LoraConfig

    spec = recipe.lora
    return LoraConfig(r=spec.r, lora_alpha=spec.alpha, lora_dropout=spec.dropout, target_modules=spec.target_modules,
                      task_type="CAUSAL_LM", bias="none")


def _progress_callback(log):
    from transformers import TrainerCallback

    class Progress(TrainerCallback):
        """One `[train] key=value` line per logging step."""

        def on_train_begin(self, args, state, control, **kwargs):
            self.start, self.tokens0 = time.perf_counter(), state.num_input_tokens_seen
            log(f"[train] begin step={state.global_step}/{state.max_steps}")

        def on_log(self, args, state, control, logs=None, **kwargs):
            logs = logs or {}
            if "loss" not in logs:
                return
            elapsed = max(time.perf_counter() - self.start, 1e-9)
            rate = (state.num_input_tokens_seen - self.tokens0) / elapsed
            parts = [f"step={state.global_step}/{state.max_steps}", f"loss={logs['loss']:.4f}"]
            if "learning_rate" in logs:
                parts.append(f"lr={logs['learning_rate']:.3g}")
            if "grad_norm" in logs:
                parts.append(f"grad_norm={float(logs['grad_norm']):.3g}")
            parts += [f"epoch={state.epoch or 0:.3f}", f"tokens={state.num_input_tokens_seen}",
                      f"tok_per_s={rate:.1f}", f"elapsed_s={elapsed:.1f}"]
            log("[train] " + " ".join(parts))

        def on_save(self, args, state, control, **kwargs):
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            log(f"[train] checkpoint step={state.global_step} dir={folder}")

    return Progress()


def _check_resume(output_dir: Path, run_info: dict, checkpoint: str | None) -> None:
    run_file = output_dir / RUN_FILE
    if checkpoint and run_file.is_file():
        before = json.loads(run_file.read_text())
        for key in ("recipe_fingerprint", "dataset_fingerprint"):
            if before.get(key) != run_info[key]:
                raise ResumeError(f"output {output_dir} has checkpoints with {key} {before.get(key)!r}, this run has "
                                  f"{run_info[key]!r}: give another --output or remove that folder")
    output_dir.mkdir(parents=True, exist_ok=True)
    run_file.write_text(json.dumps(run_info, indent=2) + "\n")


def find_checkpoint(output_dir: Path, resume: str | bool | None) -> str | None:
    """The checkpoint to resume from: `resume` if a path, else the newest in output_dir (required if resume is True)."""
    from transformers.trainer_utils import get_last_checkpoint

    if isinstance(resume, str):
        if not Path(resume).is_dir():
            raise ResumeError(f"--resume {resume}: no such checkpoint folder")
        return resume
    last = get_last_checkpoint(str(output_dir)) if output_dir.is_dir() else None
    if resume is True and last is None:
        raise ResumeError(f"--resume: no checkpoint-N folder in {output_dir}")
    return last


def _finished_summary(output_dir: Path, checkpoint: str | None, max_steps: int) -> dict | None:
    """The summary of a run that already reached its last step, so that running it again changes nothing
    (transformers would otherwise take one more step when resuming from the final checkpoint)."""
    state_file = Path(checkpoint) / "trainer_state.json" if checkpoint else None
    summary_file = output_dir / SUMMARY_FILE
    if state_file is None or not state_file.is_file() or not summary_file.is_file():
        return None
    state = json.loads(state_file.read_text())
    target = max_steps if max_steps > 0 else state.get("max_steps", 0)
    summary = json.loads(summary_file.read_text())
    if state.get("global_step", 0) >= target > 0 and summary.get("global_step") == state["global_step"]:
        return summary
    return None


def _loss_history(log_history: list[dict]) -> list[dict]:
    keep = ("step", "epoch", "loss", "learning_rate", "grad_norm", "num_input_tokens_seen")
    return [{k: entry[k] for k in keep if k in entry} for entry in log_history if "loss" in entry]


def _versions() -> dict:
    import peft
    import transformers
    import trl

    return {"torch": torch.__version__, "transformers": transformers.__version__, "trl": trl.__version__,
            "peft": peft.__version__}


@dataclass
class Prepared:
    """A trainer ready to train, and what the summary needs to say about how it was set up."""

    trainer: object  # trl.SFTTrainer
    tokenizer: object
    dataset_dir: Path
    dataset_fingerprint: str
    output_dir: Path
    base: str
    base_source: str
    base_is_hub_id: bool
    template_source: str
    precision: str
    train_rows: int
    test_rows: int


def build_trainer(recipe: Recipe, dataset_dir: str | Path, output_dir: str | Path | None = None,
                  max_steps: int | None = None, models_dir: str | Path | None = None, log=print) -> Prepared:
    """Base model (built or converted if needed), training chat template and TRL's SFTTrainer with the dataset
    tokenized and labelled (`trainer.train_dataset` holds input_ids and labels, -100 outside assistant turns)."""
    from transformers import PrinterCallback, set_seed
    from trl import SFTTrainer

    from finetune.base_models import describe_base, load_base, resolve_base
    from finetune.chat_template import resolve_template, stop_token
    from finetune.data import dataset_fingerprint, load_split

    dataset_dir = Path(dataset_dir).resolve()
    train_ds = load_split(dataset_dir, "train")
    test_ds = load_split(dataset_dir, "test", required=False) if recipe.train.eval_at_end else None
    data_fp = dataset_fingerprint(dataset_dir)
    output_dir = Path(output_dir) if output_dir else default_output(recipe, data_fp)
    steps = recipe.train.max_steps if max_steps is None else max_steps
    prec = precision(recipe)
    log(f"[setup] recipe={recipe.name} fingerprint={recipe.fingerprint()} method={recipe.method} precision={prec} "
        f"dataset={dataset_dir} rows={len(train_ds)} test_rows={len(test_ds) if test_ds is not None else 0} "
        f"output={output_dir}")

    set_seed(recipe.train.seed)
    base = resolve_base(recipe.base, dataset_dir, models_dir, log=log)
    base_source, base_is_hub = describe_base(recipe.base, base)
    model, tokenizer = load_base(base, dtype=model_dtype(recipe, prec),
                                 attn_implementation=recipe.base.attn_implementation, revision=recipe.base.revision)
    template, template_source = resolve_template(tokenizer, recipe.chat_template, recipe.system_prompt)
    tokenizer.chat_template = template
    stop = stop_token(template, tokenizer)
    stop_id = tokenizer.convert_tokens_to_ids(stop)
    eos_ids = model.generation_config.eos_token_id
    eos_ids = [] if eos_ids is None else [eos_ids] if isinstance(eos_ids, int) else list(eos_ids)
    if stop_id not in eos_ids:
        model.generation_config.eos_token_id = [stop_id, *eos_ids]
    log(f"[setup] base={base} parameters={sum(p.numel() for p in model.parameters()):,} "
        f"chat_template={template_source!r} stop_token={stop!r}")

    trainer = SFTTrainer(model=model, args=sft_config(recipe, output_dir, steps, prec), train_dataset=train_ds,
                         eval_dataset=test_ds, processing_class=tokenizer, peft_config=lora_config(recipe),
                         callbacks=[_progress_callback(log)])
    trainer.remove_callback(PrinterCallback)  # transformers' raw dict lines; ours are the `[train]` ones
    return Prepared(trainer, tokenizer, dataset_dir, data_fp, output_dir, base, base_source, base_is_hub,
                    template_source, prec, len(train_ds), len(test_ds) if test_ds is not None else 0)


def run(recipe: Recipe, dataset_dir: str | Path, output_dir: str | Path | None = None, max_steps: int | None = None,
        resume: str | bool | None = None, models_dir: str | Path | None = None, log=print) -> dict:
    """Train `recipe` on the dataset folder; returns the summary also written to <output>/training_summary.json."""
    from finetune.data import dataset_fingerprint
    from finetune.model_card import render_card

    t_begin = time.perf_counter()
    data_fp = dataset_fingerprint(dataset_dir)
    output_dir = Path(output_dir) if output_dir else default_output(recipe, data_fp)
    checkpoint = find_checkpoint(output_dir, resume)
    _check_resume(output_dir, {"recipe_fingerprint": recipe.fingerprint(), "dataset_fingerprint": data_fp},
                  checkpoint)
    finished = _finished_summary(output_dir, checkpoint, recipe.train.max_steps if max_steps is None else max_steps)
    if finished is not None:
        log(f"[done] already trained to step {finished['global_step']}: nothing to do output={output_dir}")
        return finished
    prep = build_trainer(recipe, dataset_dir, output_dir, max_steps, models_dir, log=log)
    trainer = prep.trainer
    tokens_before = 0
    if checkpoint:
        log(f"[setup] resuming from {checkpoint}")
        state_file = Path(checkpoint) / "trainer_state.json"
        if state_file.is_file():
            tokens_before = json.loads(state_file.read_text()).get("num_input_tokens_seen", 0)
    t_train = time.perf_counter()
    trainer.train(resume_from_checkpoint=checkpoint)
    train_seconds = time.perf_counter() - t_train
    state = trainer.state
    session_tokens = state.num_input_tokens_seen - tokens_before

    eval_loss = None
    if prep.test_rows:
        eval_loss = trainer.evaluate().get("eval_loss")
        log(f"[eval] test_loss={eval_loss:.4f}" if eval_loss is not None else "[eval] no test loss")

    _save(trainer, prep.tokenizer, recipe, output_dir, log)
    losses = _loss_history(state.log_history)
    summary = {
        "model_name": output_dir.name,
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
        "total_seconds": time.perf_counter() - t_begin,
        "loss_history": losses,
        "final_loss": losses[-1]["loss"] if losses else None,
        "eval_loss": eval_loss,
        "device": str(trainer.args.device),
        "precision": prep.precision,
        "seed": recipe.train.seed,
        "versions": _versions(),
    }
    if losses and not all(math.isfinite(entry["loss"]) for entry in losses):
        log("[warn] the loss history has non-finite values")
    (output_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    (output_dir / "README.md").write_text(render_card(summary))
    log(f"[done] steps={summary['global_step']} tokens={summary['tokens_seen']} "
        f"tok_per_s={summary['tokens_per_second']:.1f} wall_s={train_seconds:.1f} final_loss={summary['final_loss']} "
        f"output={output_dir}")
    return summary


def _save(trainer, tokenizer, recipe: Recipe, output_dir: Path, log) -> None:
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m finetune.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", required=True, help="a recipe YAML, or a bundled recipe's name (cpu-tiny)")
    parser.add_argument("--dataset", help="the sft_dataset folder (train.parquet/test.parquet or data/*.parquet); "
                                          "default: the recipe's `dataset`")
    parser.add_argument("--output", help="output folder; default $CRUCIBLE_HOME/checkpoints/<recipe>-<fp>-<data fp>")
    parser.add_argument("--max-steps", type=int, help="override the recipe's max_steps (e.g. a few steps in a demo)")
    parser.add_argument("--resume", nargs="?", const=True, default=None,
                        help="resume from the newest checkpoint in --output (error if none) or from the given one; "
                             "without it a run still resumes when --output has checkpoints")
    parser.add_argument("--base", help="override the recipe's base with a local model folder or a hub id")
    parser.add_argument("--models-dir", help="where built and converted bases are cached ($CRUCIBLE_HOME/models)")
    args = parser.parse_args(argv)

    def log(line: str) -> None:
        print(line, flush=True)

    try:
        recipe = load_recipe(args.recipe)
        if args.base:
            recipe = _with_base(recipe, args.base)
        dataset = args.dataset or recipe.dataset
        if not dataset:
            raise RecipeError(f"recipe {recipe.name}: no dataset; give --dataset DIR")
        quiet_libraries()
        run(recipe, dataset, args.output, args.max_steps, args.resume, args.models_dir, log=log)
    except (*USER_ERRORS, ResumeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
