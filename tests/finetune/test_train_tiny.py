import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from finetune.model_card import NOT_EVALUATED, set_eval_scores
from finetune.resume import ResumeError
from finetune.sft_run import run
from tests.finetune.conftest import tiny_recipe
from tests.finetune.fixture_data import write_sft_dataset

ROOT = Path(__file__).resolve().parents[2]
PROMPT = [{"role": "user", "content": "Write a Python function `add_1(a, b)` that returns the sum of a and b."}]


def generate(folder: Path, model=None) -> str:
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = model or AutoModelForCausalLM.from_pretrained(folder)
    inputs = tokenizer.apply_chat_template(PROMPT, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=12, do_sample=False)
    new = out[0][inputs["input_ids"].shape[1]:]
    assert len(new) > 0
    return tokenizer.decode(new, skip_special_tokens=True)


def test_full_run_records_finite_loss_and_summary(full_run, models_dir):
    output, summary, lines = full_run
    assert summary["global_step"] == 4 and summary["method"] == "full"
    losses = [entry["loss"] for entry in summary["loss_history"]]
    assert [entry["step"] for entry in summary["loss_history"]] == [1, 2, 3, 4]
    assert all(math.isfinite(x) for x in losses) and losses[-1] < losses[0]
    assert summary["tokens_seen"] > 0 and summary["tokens_per_second"] > 0 and summary["wall_seconds"] > 0
    assert math.isfinite(summary["eval_loss"])
    on_disk = json.loads((output / "training_summary.json").read_text())
    assert on_disk["dataset_fingerprint"] == summary["dataset_fingerprint"]
    assert len(on_disk["dataset_fingerprint"]) == 64
    assert on_disk["recipe"]["name"] == "cpu-tiny" and on_disk["recipe"]["train"]["learning_rate"] == 1e-3
    assert Path(on_disk["base_model"]).parent == models_dir and Path(on_disk["base_model"]).name.startswith("tiny-")
    # Progress lines for the Dagster asset to stream, one per logging step.
    steps = [line for line in lines if line.startswith("[train] step=")]
    assert len(steps) == 4 and steps[-1].startswith("[train] step=4/4 loss=")
    assert lines[-1].startswith("[done] steps=4")


def test_full_run_checkpoint_reloads_and_generates(full_run):
    output, _, _ = full_run
    assert (output / "checkpoint-2").is_dir() and (output / "checkpoint-4").is_dir()
    text = generate(output)
    assert isinstance(text, str)
    # The saved tokenizer carries the training template: renders as before, stops at <|im_end|>.
    assert "{%- generation %}" in AutoTokenizer.from_pretrained(output).chat_template
    assert AutoModelForCausalLM.from_pretrained(output).generation_config.eos_token_id in (3, [3])


def test_model_card(full_run):
    output, summary, _ = full_run
    card = (output / "README.md").read_text()
    assert summary["dataset_fingerprint"] in card and summary["base_model"] in card
    assert "| learning_rate | 0.001 |" in card and "`cpu-tiny`" in card
    assert NOT_EVALUATED in card
    set_eval_scores(output / "README.md", {"humaneval pass@1": 0.125})
    card = (output / "README.md").read_text()
    assert NOT_EVALUATED not in card and "| humaneval pass@1 | 0.125 |" in card


def test_lora_run_saves_adapter_and_merged_model(tmp_path, models_dir, quiet):
    data = write_sft_dataset(tmp_path / "hub", train=8, test=2, hub_layout=True)
    recipe = tiny_recipe(method="lora", lora={"r": 4, "alpha": 8, "dropout": 0.0}, train={"learning_rate": 5e-3})
    summary = run(recipe, data, tmp_path / "out", max_steps=3, models_dir=models_dir, log=lambda _: None)
    assert summary["global_step"] == 3 and summary["method"] == "lora"
    assert all(math.isfinite(e["loss"]) for e in summary["loss_history"]) and len(summary["loss_history"]) == 3
    out = tmp_path / "out"
    assert (out / "adapter" / "adapter_config.json").is_file()
    generate(out)  # merged weights at the root
    from peft import PeftModel

    base = AutoModelForCausalLM.from_pretrained(summary["base_model"])
    with_adapter = PeftModel.from_pretrained(base, out / "adapter")
    generate(out / "adapter", model=with_adapter)
    assert "lora" in (out / "README.md").read_text()


def test_resume_continues_the_step_count_and_the_same_losses(tmp_path, full_run, sft_dir, models_dir, quiet):
    recipe = tiny_recipe(train={"save_steps": 2})
    out = tmp_path / "out"
    first = run(recipe, sft_dir, out, max_steps=2, models_dir=models_dir, log=lambda _: None)
    assert first["global_step"] == 2 and first["resumed_from"] is None
    lines = []
    second = run(recipe, sft_dir, out, max_steps=4, models_dir=models_dir, log=lines.append)
    assert second["resumed_from"] == str(out / "checkpoint-2")
    assert any(line.startswith("[setup] resuming from") for line in lines)
    assert second["global_step"] == 4
    assert [e["step"] for e in second["loss_history"]] == [1, 2, 3, 4]
    assert second["tokens_seen"] > second["session_tokens"] > 0
    # Fixed seeds and restored optimizer/scheduler/RNG state: same losses as the uninterrupted run.
    uninterrupted = [e["loss"] for e in full_run[1]["loss_history"]]
    assert [e["loss"] for e in second["loss_history"]] == pytest.approx(uninterrupted, rel=1e-4)
    # Running the finished run again trains nothing (transformers alone would take a 5th step).
    lines = []
    again = run(recipe, sft_dir, out, max_steps=4, models_dir=models_dir, log=lines.append)
    assert again["global_step"] == 4 and lines == [f"[done] already trained to step 4: nothing to do output={out}"]
    assert not (out / "checkpoint-5").exists()


def test_resume_refuses_another_recipe(tmp_path, sft_dir, models_dir, quiet):
    out = tmp_path / "out"
    run(tiny_recipe(train={"save_steps": 1}), sft_dir, out, max_steps=1, models_dir=models_dir, log=lambda _: None)
    with pytest.raises(ResumeError, match="recipe_fingerprint"):
        run(tiny_recipe(train={"learning_rate": 5e-4}), sft_dir, out, max_steps=2, models_dir=models_dir,
            log=lambda _: None)


@pytest.mark.parametrize("strategy", ["bfd", "wrapped"])
def test_packing(tmp_path, sft_dir, models_dir, quiet, strategy):
    recipe = tiny_recipe(train={"packing": True, "packing_strategy": strategy, "max_length": 256})
    summary = run(recipe, sft_dir, tmp_path / "out", max_steps=2, models_dir=models_dir, log=lambda _: None)
    assert summary["global_step"] == 2 and all(math.isfinite(e["loss"]) for e in summary["loss_history"])


def test_cli_streams_progress_and_writes_outputs(tmp_path, sft_dir, models_dir):
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "finetune.train", "--recipe", "cpu-tiny", "--dataset", str(sft_dir), "--output",
         str(out), "--max-steps", "2", "--models-dir", str(models_dir)],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert [line.split()[1] for line in lines if line.startswith("[train] step=")] == ["step=1/2", "step=2/2"]
    assert lines[-1].startswith("[done] steps=2")
    assert {"README.md", "training_summary.json", "model.safetensors", "tokenizer.json"} <= {
        p.name for p in out.iterdir()}
    # --resume with no checkpoint where asked is a one-line error.
    empty = tmp_path / "empty"
    done = subprocess.run(
        [sys.executable, "-m", "finetune.train", "--recipe", "cpu-tiny", "--dataset", str(sft_dir), "--output",
         str(empty), "--resume", "--models-dir", str(models_dir)],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == f"error: --resume: no checkpoint-N folder in {empty}"


@pytest.mark.parametrize("method", ["full", "lora"])
def test_gradient_checkpointing(tmp_path, sft_dir, models_dir, quiet, method):
    """The GPU recipes turn it on; TRL must still get gradients into a LoRA adapter behind frozen embeddings."""
    recipe = tiny_recipe(method=method, train={"gradient_checkpointing": True, "eval_at_end": False})
    summary = run(recipe, sft_dir, tmp_path / "out", max_steps=2, models_dir=models_dir, log=lambda _: None)
    assert summary["global_step"] == 2
    assert all(math.isfinite(e["loss"]) and e["grad_norm"] > 0 for e in summary["loss_history"])
