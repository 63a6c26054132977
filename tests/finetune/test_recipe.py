import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from finetune.recipe import RECIPES_DIR, RecipeError, load_recipe, parse_recipe

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = sorted(p.stem for p in RECIPES_DIR.glob("*.yaml"))


def test_bundled_recipes_are_the_documented_ones():
    assert BUNDLED == ["cpu-smollm2", "cpu-tiny", "magicoder-full", "qwen-coder-lora", "selfcodealign-full"]


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_recipe_loads_and_states_every_hyperparameter(name):
    recipe = load_recipe(name)
    assert recipe.name == name
    raw = yaml.safe_load((RECIPES_DIR / f"{name}.yaml").read_text())
    # Every training hyperparameter is written in the file, none left to a default.
    assert set(raw["train"]) == set(type(recipe.train).model_fields)
    assert len(recipe.fingerprint()) == 12


@pytest.mark.parametrize("name, lr, epochs, seq, method", [
    ("magicoder-full", 5e-5, 2, 1216, "full"),
    ("selfcodealign-full", 1e-5, 4, 1280, "full"),
    ("qwen-coder-lora", 2e-4, 2, 1216, "lora"),
])
def test_gpu_recipes_follow_the_published_ones(name, lr, epochs, seq, method):
    recipe = load_recipe(name)
    assert (recipe.train.learning_rate, recipe.train.num_train_epochs, recipe.train.max_length, recipe.method) == (
        lr, epochs, seq, method)
    assert recipe.base.kind == "pretrained" and "Qwen2.5-Coder" in recipe.base.path


def _valid() -> dict:
    return yaml.safe_load((RECIPES_DIR / "cpu-tiny.yaml").read_text())


def _with(path: str, value) -> dict:
    data = _valid()
    *parents, leaf = path.split(".")
    node = data
    for key in parents:
        node = node[key]
    node[leaf] = value
    return data


@pytest.mark.parametrize("data, expected", [
    (_with("learnin_rate", 1e-3), "learnin_rate: unknown key"),
    (_with("train.learnin_rate", 1e-3), "train.learnin_rate: unknown key"),
    (_with("base.tiny.hidden_sise", 64), "base.tiny.hidden_sise: unknown key"),
    (_with("train.learning_rate", -1), "train.learning_rate: Input should be greater than 0"),
    (_with("train.learning_rate", "fast"), "train.learning_rate: Input should be a valid number"),
    (_with("method", "qlora"), "method: Input should be 'full' or 'lora'"),
    (_with("train.packing_strategy", "greedy"), "train.packing_strategy"),
    (_with("train.warmup_steps", 2.5), "warmup_steps must be a whole number of steps or a ratio below 1"),
    (_with("base.tiny.num_attention_heads", 3), "hidden_size must be a multiple of num_attention_heads"),
    (_with("base", {"kind": "pretrained"}), "kind pretrained needs `path`"),
    (_with("lora", {"r": 4}), "`lora` is only for method lora"),
    ({k: v for k, v in _valid().items() if k != "train"}, "train: required"),
    ([1, 2], "expected a mapping"),
])
def test_bad_recipe_is_one_clear_line(data, expected):
    with pytest.raises(RecipeError) as error:
        parse_recipe(data, "bad.yaml")
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("recipe bad.yaml: ")
    assert expected in message


def test_bad_yaml_and_missing_file(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n")
    with pytest.raises(RecipeError, match=r"not valid YAML"):
        load_recipe(broken)
    with pytest.raises(RecipeError, match=r"no such file \(bundled recipes: cpu-smollm2, cpu-tiny"):
        load_recipe(tmp_path / "nope.yaml")


def test_cli_bad_recipe_exits_2_with_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(_with("train.learnin_rate", 1e-3)))
    done = subprocess.run([sys.executable, "-m", "finetune.train", "--recipe", str(bad), "--dataset", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"error: recipe {bad}: train.learnin_rate: unknown key"]
