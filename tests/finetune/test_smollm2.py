"""cpu-smollm2 end to end: the bundled GGUF converted to a transformers folder (cached by sha256), a few LoRA steps on
data in the pipeline's format, the merged checkpoint reloaded and generating. ~60 s on 2 cores (conversion ~22 s, the
training process ~30 s of which 3 steps ~10-15 s); measured times are printed (pytest -s) and attached as test
properties."""

import json
import math
import subprocess
import sys
import time

import pytest

from finetune.smollm2 import SMOLLM2_FILE, SMOLLM2_PACKAGE, convert_gguf, packaged_gguf, sha256_file
from tests.finetune.test_train_tiny import ROOT, generate

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    models = tmp_path_factory.mktemp("models")
    start = time.perf_counter()
    folder = convert_gguf(packaged_gguf(SMOLLM2_PACKAGE, SMOLLM2_FILE), models, log=lambda _: None)
    return models, folder, time.perf_counter() - start


def test_conversion_is_cached_by_sha256(converted, record_property):
    models, folder, seconds = converted
    record_property("conversion_seconds", round(seconds, 1))
    print(f"\nSmolLM2 GGUF -> transformers conversion: {seconds:.1f} s")
    gguf = packaged_gguf(SMOLLM2_PACKAGE, SMOLLM2_FILE)
    sha = sha256_file(gguf)
    assert folder.name.endswith(sha[:12])
    info = json.loads((folder / "conversion.json").read_text())
    assert info["gguf_sha256"] == sha
    assert json.loads((folder / "config.json").read_text()).get("quantization_config") is None
    start = time.perf_counter()
    assert convert_gguf(gguf, models, log=lambda _: None) == folder
    assert time.perf_counter() - start < 5  # a hash, no second conversion


def test_few_lora_steps_then_reload_and_generate(converted, sft_dir, tmp_path, record_property):
    """Through the CLI, as the Dagster asset runs it: a fresh process applies finetune.sft_run's OMP_WAIT_POLICY before
    torch loads (in this process torch is already loaded, and on a loaded machine spinning threads cost ~6x)."""
    models, _, _ = converted
    done = subprocess.run(
        [sys.executable, "-m", "finetune.train", "--recipe", "cpu-smollm2", "--dataset", str(sft_dir), "--output",
         str(tmp_path / "out"), "--max-steps", "3", "--models-dir", str(models)],
        cwd=ROOT, capture_output=True, text=True, timeout=800)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"already converted at {models}" in done.stdout
    summary = json.loads((tmp_path / "out" / "training_summary.json").read_text())
    record_property("tokens_per_second", round(summary["tokens_per_second"], 1))
    record_property("train_seconds", round(summary["wall_seconds"], 1))
    print(f"\ncpu-smollm2 LoRA: {summary['global_step']} steps, {summary['tokens_seen']} tokens, "
          f"{summary['tokens_per_second']:.1f} tokens/s, {summary['wall_seconds']:.1f} s")
    assert summary["global_step"] == 3
    assert all(math.isfinite(e["loss"]) for e in summary["loss_history"])
    assert summary["base_source"].startswith(f"converted from {SMOLLM2_FILE}")
    text = generate(tmp_path / "out")
    assert text.strip()
