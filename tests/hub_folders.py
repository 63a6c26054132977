"""Folders as Crucible stages them for the Hub, small and built without training: a dataset release (the Hub
layout data/<split>-00000-of-00001.parquet with a card) and a model folder (config, safetensors weights, tokenizer
files, card), for the validation, upload and download tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from huggingface_hub import DatasetCardData, EvalResult, ModelCardData
from safetensors.numpy import save_file

from finetune.recipe import load_recipe
from tests.finetune.fixture_data import write_sft_dataset


def card_text(data, body: str = "# A card\n") -> str:
    return f"---\n{data.to_yaml()}\n---\n{body}"


def dataset_meta(**changes) -> dict:
    meta = {"license": "mit", "pretty_name": "fixture", "task_categories": ["text-generation"],
            "configs": [{"config_name": "default", "data_files": [
                {"split": "train", "path": "data/train-*.parquet"}, {"split": "test", "path": "data/test-*.parquet"}]}]}
    return {**meta, **changes}


def write_dataset_folder(folder: Path, train: int = 5, test: int = 2, **meta) -> Path:
    """A valid dataset folder; `meta` replaces front-matter keys (None drops one)."""
    write_sft_dataset(folder, train=train, test=test, hub_layout=True)
    fields = {k: v for k, v in dataset_meta(**meta).items() if v is not None}
    (folder / "README.md").write_text(card_text(DatasetCardData(**fields)))
    return folder


def humaneval_result(value=0.25) -> EvalResult:
    return EvalResult(task_type="text-generation", dataset_type="openai/openai_humaneval", dataset_name="HumanEval",
                      metric_type="pass@1", metric_value=value)


def write_model_folder(folder: Path, **card) -> Path:
    """A valid model folder (a 2x2 float32 weight); `card` replaces ModelCardData fields."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": 2}))
    save_file({"model.embed_tokens.weight": np.arange(4, dtype=np.float32).reshape(2, 2)},
              str(folder / "model.safetensors"))
    (folder / "tokenizer.json").write_text(json.dumps({"version": "1.0", "model": {"type": "BPE"}}))
    (folder / "tokenizer_config.json").write_text("{}")
    fields = {"license": "apache-2.0", "base_model": "HuggingFaceTB/SmolLM2-135M-Instruct",
              "library_name": "transformers", "model_name": "me/model", "eval_results": [humaneval_result()], **card}
    (folder / "README.md").write_text(card_text(ModelCardData(**fields)))
    return folder


def training_summary(recipe: str = "cpu-tiny", **changes) -> dict:
    """A training_summary.json as finetune/summary.py writes it, for a run of `recipe` that never happened."""
    loaded = load_recipe(recipe)
    return {
        "model_name": f"{recipe}-0123abcd-4567ef01", "base_model": "/models/tiny-abc", "base_source": "built here",
        "base_is_hub_id": False, "method": loaded.method, "dataset": "/data/sft/1a2b", "dataset_fingerprint": "f" * 64,
        "train_rows": 12, "test_rows": 2, "recipe": loaded.canonical(), "recipe_fingerprint": loaded.fingerprint(),
        "chat_template": "chatml", "max_steps": 4, "global_step": 4, "epoch": 1.0, "tokens_seen": 2048,
        "session_tokens": 2048, "tokens_per_second": 100.0, "wall_seconds": 20.5,
        "loss_history": [{"step": 1, "loss": 3.0}, {"step": 4, "loss": 2.0}], "final_loss": 2.0, "eval_loss": 2.2,
        "device": "cpu", "precision": "fp32", **changes}
