import pytest
import yaml

from finetune.recipe import RECIPES_DIR, parse_recipe
from tests.finetune.fixture_data import write_sft_dataset


@pytest.fixture(scope="session")
def sft_dir(tmp_path_factory):
    """The pipeline's sft_dataset layout: train.parquet and test.parquet."""
    return write_sft_dataset(tmp_path_factory.mktemp("sft"))


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory):
    """Built bases (the tiny model) for this session, shared by the tests."""
    return tmp_path_factory.mktemp("models")


def tiny_recipe(**changes):
    """cpu-tiny.yaml with `changes` merged in (`train` and `lora` merge key by key)."""
    data = yaml.safe_load((RECIPES_DIR / "cpu-tiny.yaml").read_text())
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return parse_recipe(data, "cpu-tiny (test variant)")


@pytest.fixture(scope="session")
def quiet():
    from finetune.sft_run import quiet_libraries

    quiet_libraries()


@pytest.fixture(scope="session")
def full_run(tmp_path_factory, sft_dir, models_dir, quiet):
    """cpu-tiny, full fine-tuning, 4 uninterrupted steps."""
    from finetune.sft_run import run

    output = tmp_path_factory.mktemp("full")
    lines = []
    summary = run(tiny_recipe(train={"save_steps": 2}), sft_dir, output, max_steps=4, models_dir=models_dir,
                  log=lines.append)
    return output, summary, lines
