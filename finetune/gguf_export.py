"""A fine-tuned checkpoint as a GGUF file that llama.cpp serves: llama.cpp's own converter (to f16), then quantized.

    exported = export_gguf(checkpoint, home.models)              # <models>/<checkpoint name>.q8_0.gguf
    exported = export_gguf(checkpoint, out_dir, "q4_k_m")        # q8_0, q4_k_m, q4_0, q5_k_m or f16
    with LocalTeacherServer(exported.path) as server: ...        # served under the name <checkpoint name>.q8_0

    python -m finetune.gguf_export CHECKPOINT [--out DIR] [--quantization q8_0]    # prints one JSON object

The checkpoint is a transformers folder with merged weights (config.json, *.safetensors, tokenizer files, the chat
template). The converter is convert_hf_to_gguf.py from the llama.cpp that llama-cpp-python was built from, installed
by `make setup` (finetune/install_converter.py); it runs as a subprocess with the gguf-py shipped beside it first on
PYTHONPATH, so the format it writes is the one the runtime reads, whatever `gguf` release the venv holds. Quantizing is
llama.cpp's `llama_model_quantize` through llama-cpp-python.

Two adjustments, both made in a temporary folder of symlinks to the checkpoint's files (the checkpoint is never
modified):
- the chat template loses transformers' {% generation %} / {% endgeneration %} markers, which training needs
  (finetune/chat_template.py) and jinja servers do not know;
- a byte-level BPE tokenizer whose pre-tokenizer llama.cpp does not recognise by its hash (the converter knows
  published models only, not a vocabulary trained here, such as the cpu-tiny recipe's) is written with llama.cpp's
  `gpt-2` pre-tokenizer, but only when tokenizer.json declares exactly GPT-2's pre-tokenization (ByteLevel with its
  regex), which is what that pre-tokenizer implements. Any other unrecognised tokenizer fails as the converter says.

An export is cached: `<name>.<quantization>.gguf` beside a `.json` sidecar recording the checkpoint's files hash
(resources.files.model_files_sha256) and the quantization; the same checkpoint files and quantization return that file
without any work. Files are written under temporary names and renamed when complete, so a killed export leaves no
half-written GGUF under the final name.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from resources.files import exclusive_lock, model_files_sha256, sha256_file
from resources.home import Home
from resources.server_process import usable_cpus

CONVERTER_ENV = "CRUCIBLE_GGUF_CONVERTER"
# quantization name -> llama_cpp's file-type constant; None: the converter's f16 output as it is.
QUANTIZATIONS: dict[str, str | None] = {
    "q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0",
    "q4_k_m": "LLAMA_FTYPE_MOSTLY_Q4_K_M",
    "q4_0": "LLAMA_FTYPE_MOSTLY_Q4_0",
    "q5_k_m": "LLAMA_FTYPE_MOSTLY_Q5_K_M",
    "f16": None,
}
GPT2_PRE_TOKENIZER = "gpt-2"  # llama.cpp's name for GPT-2's byte-level regex pre-tokenization
_STDERR_TAIL_LINES = 3

# Runs the converter unchanged (same argv, run as __main__) after one patch: when llama.cpp does not recognise a BPE
# pre-tokenizer by its hash and argv[2] names a fallback (given only when tokenizer.json declares exactly that
# pre-tokenization), that name is used instead of raising.
_CONVERTER_BOOTSTRAP = """\
import os, runpy, sys
converter, fallback = sys.argv[1], sys.argv[2]
sys.argv = [converter, *sys.argv[3:]]
sys.path.insert(0, os.path.dirname(converter))
try:
    from conversion import base
except ImportError:  # not the layout this patch knows: the converter runs as it is
    fallback = ""
if fallback:
    recognised = base.TextModel.get_vocab_base_pre
    def get_vocab_base_pre(self, tokenizer):
        try:
            return recognised(self, tokenizer)
        except NotImplementedError:
            print(f"gguf_export: pre-tokenizer hash not known to llama.cpp; tokenizer.json declares GPT-2 "
                  f"byte-level pre-tokenization, written as {fallback!r}", file=sys.stderr)
            return fallback
    base.TextModel.get_vocab_base_pre = get_vocab_base_pre
runpy.run_path(converter, run_name="__main__")
"""

# {% generation %} / {% endgeneration %} with optional whitespace control; the whitespace a `-` would have removed is
# removed with the marker, so the template renders exactly as before.
_GENERATION_MARKER = re.compile(r"(?P<before>\s*)\{%(?P<left>-?)\s*(?:end)?generation\s*(?P<right>-?)%\}(?P<after>\s*)")
_WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin")
_CHAT_TEMPLATE_FILE = "chat_template.jinja"
_TOKENIZER_CONFIG = "tokenizer_config.json"


class GGUFExportError(RuntimeError):
    """A checkpoint could not be exported to GGUF. One line naming the fix."""


@dataclass(frozen=True)
class GGUFExport:
    """An exported GGUF file and what it was made from."""

    path: Path
    sha256: str  # of the GGUF file
    quantization: str
    source_sha256: str  # model_files_sha256 of the checkpoint folder
    convert_s: float  # 0 when cached
    quantize_s: float  # 0 when cached or f16
    cached: bool

    def to_dict(self) -> dict:
        return {**asdict(self), "path": str(self.path)}


def converter_path() -> Path:
    """convert_hf_to_gguf.py: $CRUCIBLE_GGUF_CONVERTER, else the one `make setup` installs in the venv."""
    configured = os.environ.get(CONVERTER_ENV)
    path = Path(configured) if configured else Path(sys.prefix) / "share" / "llama.cpp" / "convert_hf_to_gguf.py"
    if not path.is_file():
        raise GGUFExportError(f"llama.cpp's converter is not installed at {path}: run `make setup`")
    return path


def strip_generation_markers(template: str) -> str:
    """The chat template without {% generation %} / {% endgeneration %}, rendering the same text."""
    def replace(match: re.Match) -> str:
        before = "" if match["left"] else match["before"]
        after = "" if match["right"] else match["after"]
        return before + after

    return _GENERATION_MARKER.sub(replace, template)


def _weight_files(checkpoint: Path) -> list[Path]:
    return [p for pattern in _WEIGHT_PATTERNS for p in checkpoint.glob(pattern)
            if p.is_file() and not p.name.startswith("adapter_")]


def check_checkpoint(checkpoint: Path) -> None:
    """A folder the converter can read: config.json and full model weights (not only a LoRA adapter)."""
    if not checkpoint.is_dir():
        raise GGUFExportError(f"{checkpoint}: no such checkpoint folder")
    if not _weight_files(checkpoint):
        raise GGUFExportError(f"{checkpoint} holds no model weights (*.safetensors or pytorch_model*.bin; a LoRA "
                              "adapter alone cannot be converted): train with a recipe that merges "
                              "(`lora.merge: true`)")
    if not (checkpoint / "config.json").is_file():
        raise GGUFExportError(f"{checkpoint} has no config.json: give a transformers checkpoint folder")


def gpt2_fallback(checkpoint: Path) -> str:
    """GPT2_PRE_TOKENIZER when tokenizer.json pre-tokenizes exactly like GPT-2 (byte-level with its regex), else ''."""
    try:
        pre = json.loads((checkpoint / "tokenizer.json").read_text()).get("pre_tokenizer") or {}
    except (OSError, ValueError, AttributeError):
        return ""
    plain_byte_level = pre.get("type") == "ByteLevel" and pre.get("use_regex", True) and not pre.get("add_prefix_space")
    return GPT2_PRE_TOKENIZER if plain_byte_level else ""


def stage_checkpoint(checkpoint: Path, into: Path) -> Path:
    """A folder named like the checkpoint under `into`: symlinks to its top-level files, except the chat template
    files, which are rewritten without generation markers."""
    staged = into / checkpoint.name
    staged.mkdir(parents=True)
    for path in sorted(checkpoint.iterdir()):
        if not path.is_file():
            continue  # checkpoint-N resume state, adapter/
        target = staged / path.name
        if path.name == _CHAT_TEMPLATE_FILE:
            target.write_text(strip_generation_markers(path.read_text()))
        elif path.name == _TOKENIZER_CONFIG:
            config = json.loads(path.read_text())
            template = config.get("chat_template")
            if isinstance(template, str):
                config["chat_template"] = strip_generation_markers(template)
            elif isinstance(template, list):  # named templates: [{"name": ..., "template": ...}]
                config["chat_template"] = [{**t, "template": strip_generation_markers(t.get("template", ""))}
                                           for t in template]
            target.write_text(json.dumps(config, indent=2, ensure_ascii=False))
        else:
            target.symlink_to(path.resolve())
    return staged


def _stderr_tail(text: str) -> str:
    lines = [line.strip() for line in text.replace("\r", "\n").splitlines() if line.strip()]
    return " | ".join(lines[-_STDERR_TAIL_LINES:])[-600:] or "(no output)"


def convert_to_f16(checkpoint: Path, outfile: Path) -> None:
    """Run llama.cpp's converter on a staged copy of `checkpoint`, writing an f16 GGUF to `outfile`."""
    converter = converter_path()
    env = dict(os.environ)
    # The gguf-py shipped beside the converter is the one it is written against: it must win over the venv's `gguf`.
    gguf_py = str(converter.parent / "gguf-py")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (gguf_py, env.get("PYTHONPATH")) if p)
    env.pop("NO_LOCAL_GGUF", None)
    with tempfile.TemporaryDirectory(prefix="crucible-gguf-") as tmp:
        staged = stage_checkpoint(checkpoint, Path(tmp))
        cmd = [sys.executable, "-c", _CONVERTER_BOOTSTRAP, str(converter), gpt2_fallback(checkpoint),
               str(staged), "--outfile", str(outfile), "--outtype", "f16"]
        done = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, errors="replace",
                              env=env)
    if done.returncode != 0:
        raise GGUFExportError(f"llama.cpp's converter failed on {checkpoint} (exit {done.returncode}): "
                              f"{_stderr_tail(done.stderr)}")


def quantize(src: Path, dst: Path, quantization: str) -> None:
    """llama.cpp's quantizer (through llama-cpp-python) from an f16 GGUF to `quantization`."""
    try:
        import llama_cpp
    except ImportError:
        raise GGUFExportError("llama-cpp-python is not installed (it quantizes GGUF files): run `make setup`, or "
                              "pip install 'crucible[offline]'") from None
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, QUANTIZATIONS[quantization])
    params.nthread = usable_cpus()
    rc = llama_cpp.llama_model_quantize(os.fsencode(src), os.fsencode(dst), ctypes.byref(params))
    if rc != 0:
        raise GGUFExportError(f"llama.cpp could not quantize {src.name} to {quantization} (llama_model_quantize "
                              f"returned {rc}): see its log on stderr, or try another --quantization")


def _check_quantization(quantization: str) -> None:
    if quantization not in QUANTIZATIONS:
        raise GGUFExportError(f"unknown quantization {quantization!r}: choose one of {', '.join(QUANTIZATIONS)}")


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _cached(path: Path, source_sha256: str, quantization: str) -> GGUFExport | None:
    """The export recorded by the sidecar, if it is of these checkpoint files and this quantization, and the file is
    the one it recorded (same size)."""
    try:
        record = json.loads(_sidecar(path).read_text())
        size = path.stat().st_size
    except (OSError, ValueError):
        return None
    if (record.get("source_sha256") != source_sha256 or record.get("quantization") != quantization
            or record.get("size") != size or not record.get("sha256")):
        return None
    return GGUFExport(path, record["sha256"], quantization, source_sha256, 0.0, 0.0, cached=True)


def _write_json_atomically(path: Path, value: dict) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    with os.fdopen(fd, "w") as handle:
        json.dump(value, handle, indent=2)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def export_gguf(checkpoint: str | os.PathLike, out_dir: str | os.PathLike, quantization: str = "q8_0") -> GGUFExport:
    """`out_dir/<checkpoint name>.<quantization>.gguf` from a checkpoint folder, or the cached one (see the module
    docstring)."""
    checkpoint, out_dir = Path(checkpoint).resolve(), Path(out_dir)
    _check_quantization(quantization)
    check_checkpoint(checkpoint)
    source_sha256 = model_files_sha256(checkpoint)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{checkpoint.name}.{quantization}.gguf"
    if hit := _cached(target, source_sha256, quantization):
        return hit
    with exclusive_lock(out_dir / f".{target.name}.lock"):
        if hit := _cached(target, source_sha256, quantization):  # another process finished it meanwhile
            return hit
        for stale in out_dir.glob(f".{target.name}.*.partial"):  # a killed export's leftovers; we hold the lock
            stale.unlink(missing_ok=True)
        _sidecar(target).unlink(missing_ok=True)  # it must never vouch for a file it did not record
        f16 = out_dir / f".{target.name}.f16.partial"
        final = out_dir / f".{target.name}.{quantization}.partial"
        try:
            started = time.perf_counter()
            convert_to_f16(checkpoint, f16)
            convert_s = time.perf_counter() - started
            quantize_s = 0.0
            if QUANTIZATIONS[quantization] is None:
                f16.rename(final)
            else:
                started = time.perf_counter()
                quantize(f16, final, quantization)
                quantize_s = time.perf_counter() - started
            os.chmod(final, 0o644)
            digest = sha256_file(final)
            os.replace(final, target)
        finally:
            f16.unlink(missing_ok=True)
            final.unlink(missing_ok=True)
        _write_json_atomically(_sidecar(target), {
            "source_sha256": source_sha256, "quantization": quantization, "sha256": digest,
            "size": target.stat().st_size, "checkpoint": str(checkpoint),
            "convert_s": round(convert_s, 2), "quantize_s": round(quantize_s, 2),
        })
    return GGUFExport(target, digest, quantization, source_sha256, convert_s, quantize_s, cached=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m finetune.gguf_export", description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", help="a transformers checkpoint folder with merged weights")
    parser.add_argument("--out", help="output folder (default: $CRUCIBLE_HOME/models)")
    parser.add_argument("--quantization", default="q8_0", help=f"one of {', '.join(QUANTIZATIONS)} (default: q8_0)")
    args = parser.parse_args(argv)
    try:
        exported = export_gguf(args.checkpoint, args.out or Home.from_env().models, args.quantization)
    except GGUFExportError as exc:
        print(f"gguf_export: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(exported.to_dict()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
