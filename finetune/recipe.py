"""Training recipes: one YAML file holds every hyperparameter of a run (alignment-handbook style).

    recipe = load_recipe("finetune/recipes/cpu-tiny.yaml")   # RecipeError (one line) on unknown keys or bad values
    recipe.train.learning_rate, recipe.base.kind, recipe.fingerprint()

A recipe is frozen; its fingerprint (12 hex of the sha256 of its canonical JSON) names output folders and goes into
training_summary.json and the model card, so two runs with the same recipe, data and seed are comparable.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

RECIPES_DIR = Path(__file__).resolve().parent / "recipes"


class RecipeError(ValueError):
    """A recipe file is missing, is not YAML, or has an unknown key or a bad value. The message is one line."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TinySpec(_Strict):
    """A randomly initialised Llama-style model and a byte-level BPE tokenizer trained on the dataset's text."""

    vocab_size: int = Field(2048, ge=300, description="BPE vocabulary (256 byte symbols + merges + special tokens)")
    hidden_size: int = Field(64, ge=8)
    intermediate_size: int = Field(128, ge=8)
    num_hidden_layers: int = Field(2, ge=1)
    num_attention_heads: int = Field(4, ge=1)
    num_key_value_heads: int = Field(2, ge=1)
    max_position_embeddings: int = Field(2048, ge=64)
    init_seed: int = Field(0, description="torch seed of the random initialisation")

    @model_validator(mode="after")
    def _heads_divide(self):
        if self.hidden_size % self.num_attention_heads:
            raise ValueError("hidden_size must be a multiple of num_attention_heads")
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError("num_attention_heads must be a multiple of num_key_value_heads")
        return self


class BaseSpec(_Strict):
    """Where the weights come from. `pretrained`: a local folder or a hub id; `gguf`: a GGUF file (inside an installed
    package, or a path) converted once to a transformers folder; `tiny`: built locally (see TinySpec)."""

    kind: Literal["pretrained", "gguf", "tiny"]
    path: str | None = Field(None, description="pretrained: local folder or hub id; gguf: path of a .gguf file")
    gguf_package: str | None = Field(None, description="gguf: importable package that ships the file")
    gguf_file: str | None = Field(None, description="gguf: file name inside gguf_package")
    revision: str | None = Field(None, description="pretrained hub id: branch, tag or commit")
    tiny: TinySpec | None = None
    attn_implementation: str | None = Field(None, description="e.g. sdpa, flash_attention_2; None: transformers' "
                                                              "default")

    @model_validator(mode="after")
    def _kind_fields(self):
        if self.kind == "pretrained" and not self.path:
            raise ValueError("kind pretrained needs `path` (a local folder or a hub id)")
        if self.kind == "gguf" and not (self.path or (self.gguf_package and self.gguf_file)):
            raise ValueError("kind gguf needs `path`, or `gguf_package` and `gguf_file`")
        if self.kind == "tiny" and self.tiny is None:
            object.__setattr__(self, "tiny", TinySpec())
        if self.kind != "tiny" and self.tiny is not None:
            raise ValueError("`tiny` is only for kind tiny")
        return self


class LoraSpec(_Strict):
    r: int = Field(16, ge=1)
    alpha: int = Field(32, ge=1)
    dropout: float = Field(0.05, ge=0.0, lt=1.0)
    target_modules: list[str] | Literal["all-linear"] = "all-linear"
    merge: bool = Field(True, description="also save the adapter merged into the base weights (the output root)")


class TrainSpec(_Strict):
    """Hyperparameters passed to TRL's SFTConfig (names as there)."""

    learning_rate: float = Field(gt=0)
    num_train_epochs: float = Field(1.0, gt=0)
    max_steps: int = Field(-1, ge=-1, description="-1: num_train_epochs decides")
    per_device_train_batch_size: int = Field(1, ge=1)
    gradient_accumulation_steps: int = Field(1, ge=1)
    max_length: int = Field(1024, ge=16, description="tokens per sequence (truncated, or the packed block length)")
    packing: bool = False
    packing_strategy: Literal["bfd", "bfd_split", "wrapped"] = "bfd"
    lr_scheduler_type: Literal["linear", "cosine", "constant", "constant_with_warmup"] = "linear"
    warmup_steps: float = Field(0, ge=0, description="an int: steps; a float in [0, 1): share of the total steps")
    weight_decay: float = Field(0.0, ge=0)
    max_grad_norm: float | None = Field(1.0, description="None: no clipping")
    optim: Literal["adamw_torch", "adamw_torch_fused", "adafactor", "sgd"] = "adamw_torch"
    logging_steps: int = Field(1, ge=1)
    save_steps: int = Field(500, ge=1)
    save_total_limit: int | None = Field(2, ge=1)
    seed: int = 42
    gradient_checkpointing: bool = False
    precision: Literal["auto", "bf16", "fp32"] = Field("auto", description="auto: bf16 on a GPU that supports it "
                                                                           "or a CPU with bf16 units, fp32 otherwise")
    model_dtype: Literal["auto", "float32", "bfloat16"] = Field("auto", description="weights as loaded; auto: "
                                                                            "bfloat16 for LoRA under bf16, else "
                                                                            "float32 (full fine-tuning keeps float32 "
                                                                            "master weights)")
    eval_at_end: bool = Field(True, description="loss on the test split after training, if the dataset has one")
    per_device_eval_batch_size: int = Field(2, ge=1)

    @model_validator(mode="after")
    def _warmup(self):
        if self.warmup_steps >= 1 and self.warmup_steps != int(self.warmup_steps):
            raise ValueError("warmup_steps must be a whole number of steps or a ratio below 1")
        return self


class Recipe(_Strict):
    name: str = Field(min_length=1)
    description: str = ""
    base: BaseSpec
    method: Literal["full", "lora"] = "full"
    lora: LoraSpec | None = None
    chat_template: str = Field("auto", description="auto: the base's own if it marks assistant turns, else TRL's "
                                                   "training variant of it, else chatml; chatml; or a .jinja path")
    system_prompt: str | None = Field(None, description="chatml only: system turn added when a dialogue has none")
    dataset: str | None = Field(None, description="default dataset folder; --dataset overrides it")
    train: TrainSpec

    @model_validator(mode="after")
    def _method_fields(self):
        if self.method == "lora" and self.lora is None:
            object.__setattr__(self, "lora", LoraSpec())
        if self.method == "full" and self.lora is not None:
            raise ValueError("`lora` is only for method lora")
        return self

    def canonical(self) -> dict:
        return self.model_dump(mode="json")

    def fingerprint(self) -> str:
        text = json.dumps(self.canonical(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def _format_error(source: str, error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "(top level)"
        if item["type"] == "extra_forbidden":
            problems.append(f"{where}: unknown key")
        elif item["type"] == "missing":
            problems.append(f"{where}: required")
        else:
            message = item["msg"].removeprefix("Value error, ")
            problems.append(f"{where}: {message} (got {item['input']!r})" if not isinstance(item["input"], dict)
                            else f"{where}: {message}")
    return f"recipe {source}: " + "; ".join(problems)


def parse_recipe(data: object, source: str = "<dict>") -> Recipe:
    if not isinstance(data, dict):
        raise RecipeError(f"recipe {source}: expected a mapping of keys, got {type(data).__name__}")
    try:
        return Recipe.model_validate(data)
    except ValidationError as error:
        raise RecipeError(_format_error(source, error)) from None


def resolve_recipe_path(name_or_path: str | Path) -> Path:
    """A path, or the bare name of a bundled recipe (`cpu-tiny` -> finetune/recipes/cpu-tiny.yaml)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    bundled = RECIPES_DIR / f"{path.name.removesuffix('.yaml')}.yaml"
    if bundled.is_file() and len(path.parts) == 1:
        return bundled
    known = ", ".join(sorted(p.stem for p in RECIPES_DIR.glob("*.yaml")))
    raise RecipeError(f"recipe {name_or_path}: no such file (bundled recipes: {known})")


def load_recipe(name_or_path: str | Path) -> Recipe:
    path = resolve_recipe_path(name_or_path)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise RecipeError(f"recipe {path}: not valid YAML ({first})") from None
    return parse_recipe(data, str(path))
