"""From a recipe's `base` section to something `from_pretrained` accepts: a local folder or a hub id.

    where = resolve_base(recipe.base, dataset_dir)            # tiny and gguf bases are built/converted once, cached
    model, tokenizer = load_base(where, dtype, attn_implementation)

Built bases live under $CRUCIBLE_HOME/models (or `models_dir`). A hub id is passed through untouched: offline it fails
in transformers with its own message, so give a local path on machines without the Hub.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from finetune.recipe import BaseSpec
from finetune.smollm2 import convert_gguf, packaged_gguf
from finetune.tiny import build_tiny
from resources.home import Home


def default_models_dir() -> Path:
    return Home.from_env().models


def resolve_base(base: BaseSpec, dataset_dir: str | Path, models_dir: str | Path | None = None, log=print) -> str:
    models_dir = Path(models_dir) if models_dir else default_models_dir()
    if base.kind == "tiny":
        return str(build_tiny(base.tiny, dataset_dir, models_dir, log=log))
    if base.kind == "gguf":
        gguf = Path(base.path) if base.path else packaged_gguf(base.gguf_package, base.gguf_file)
        return str(convert_gguf(gguf, models_dir, log=log))
    path = Path(base.path).expanduser()
    return str(path) if path.exists() else base.path


def describe_base(base: BaseSpec, where: str) -> tuple[str, bool]:
    """A few words on where the base came from, and whether `where` is a hub id (not a local folder)."""
    if base.kind == "tiny":
        return "tiny random Llama-style model, BPE tokenizer trained on this dataset", False
    if base.kind == "gguf":
        conversion = Path(where) / "conversion.json"
        info = json.loads(conversion.read_text()) if conversion.is_file() else {}
        return f"converted from {Path(info.get('source', '?')).name}, sha256 {info.get('gguf_sha256', '?')[:12]}", False
    return ("local folder" if Path(where).exists() else "hub id"), not Path(where).exists()


def load_base(where: str, dtype: torch.dtype = torch.float32, attn_implementation: str | None = None,
              revision: str | None = None):
    kwargs = {"dtype": dtype, "revision": revision}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    tokenizer = AutoTokenizer.from_pretrained(where, revision=revision)
    model = AutoModelForCausalLM.from_pretrained(where, **kwargs)
    return model, tokenizer
