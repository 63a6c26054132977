"""TRL's SFTTrainer built from a recipe: the base model, the training chat template, the dataset tokenized with labels
on assistant tokens only.

    prep = build_trainer(recipe, dataset_dir, output_dir, max_steps=None, models_dir=None, log=print)
    prep.trainer.train()          # prep.tokenizer, prep.base, prep.precision, prep.train_rows, prep.test_rows, ...

Full fine-tuning or LoRA (recipe `method`), optional packing, bf16 on a GPU that supports it (precision `auto`), fixed
seeds. While training, `log` gets one `[train] key=value ...` line per logging step and one per checkpoint saved.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch

from finetune.recipe import Recipe
from resources.cpu_features import native_bf16_cpu
from resources.home import Home


def precision(recipe: Recipe) -> str:
    if recipe.train.precision != "auto":
        return recipe.train.precision
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    # On a CPU, bf16 only where it has bf16 units: emulated on an AVX2-only EPYC, 5 LoRA steps of SmolLM2-135M had
    # not finished after 12 minutes (2026-12-03).
    return "bf16" if native_bf16_cpu() else "fp32"


def model_dtype(recipe: Recipe, precision_name: str) -> torch.dtype:
    if recipe.train.model_dtype != "auto":
        return getattr(torch, recipe.train.model_dtype)
    return torch.bfloat16 if precision_name == "bf16" and recipe.method == "lora" else torch.float32


def default_output(recipe: Recipe, dataset_fp: str) -> Path:
    return Home.from_env().checkpoints / f"{recipe.name}-{recipe.fingerprint()[:8]}-{dataset_fp[:8]}"


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
