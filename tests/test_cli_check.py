"""`crucible check` on a home whose stored tables were corrupted after they were written: each corruption fails it
(exit 1), naming the row; a clean home passes (exit 0)."""

import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from eval.benchmarks import load_benchmarks
from resources.home import Home
from resources.store import table_path, write_table
from tests.conftest import require_bwrap
from tests.dialogue_rows import dialogue_row, write_dialogues

ROOT = Path(__file__).resolve().parent.parent
CURATED = ("verified_dialogues", "deduplicated_dialogues", "decontaminated_dialogues")


def crucible(*args: str, home: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "cli.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={"PATH": "/usr/bin:/bin", "CRUCIBLE_HOME": str(home), "HOME": str(home)})


def rewrite(home: Path, asset: str, change) -> None:
    path = table_path(asset, "stdlib", Home(home))
    write_table(change(pl.read_parquet(path)), path)


def wrong_answer(df: pl.DataFrame) -> pl.DataFrame:
    return df.with_columns(pl.when(pl.col("dialogue_id") == dialogue_row(1)["dialogue_id"])
                           .then(pl.lit("def count_vowels(text):\n    return 0\n"))
                           .otherwise(pl.col("solution")).alias("solution"))


def pasted_benchmark(df: pl.DataFrame) -> pl.DataFrame:
    item = next(i for i in load_benchmarks() if i.task_id == "HumanEval/12")
    row = {**df.row(0, named=True), "dialogue_id": "pasted-he12", "instruction": item.description,
           "solution": item.solution}
    return pl.concat([df, pl.DataFrame([row], schema=df.schema)])


CORRUPTIONS = {
    # name: (asset, change, the check that must fail, what its line must name)
    "wrong final answer": ("verified_dialogues", wrong_answer, "sample_reruns_pass", dialogue_row(1)["dialogue_id"]),
    "dropped column": ("deduplicated_dialogues", lambda df: df.drop("tests"), "stored_table_valid",
                       "missing column tests"),
    "duplicated id": ("decontaminated_dialogues", lambda df: pl.concat([df, df.slice(3, 1)]), "stored_table_valid",
                      dialogue_row(3)["dialogue_id"]),
    "pasted benchmark problem": ("decontaminated_dialogues", pasted_benchmark, "no_benchmark_text", "pasted-he12"),
}


@pytest.fixture
def home(tmp_path) -> Path:
    require_bwrap()
    home = tmp_path / "home"
    write_dialogues("stdlib", range(6), CURATED, home=Home(home))
    return home


def test_a_clean_home_passes_every_check(home):
    done = crucible("check", "--sample", "0", home=home)
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert any(line.startswith("PASS") and "sample_reruns_pass" in line and "verified_dialogues" in line
               for line in lines), lines
    assert not any(line.startswith("FAIL") for line in lines)


@pytest.mark.parametrize("corruption", CORRUPTIONS)
def test_each_corruption_fails_naming_the_row(home, corruption):
    asset, change, check, named = CORRUPTIONS[corruption]
    rewrite(home, asset, change)
    done = crucible("check", "--asset", asset, "--partition", "stdlib", "--sample", "0", home=home)
    assert done.returncode == 1, done.stdout + done.stderr[-2000:]
    failing = [line for line in done.stdout.splitlines() if line.startswith("FAIL")]
    assert any(check in line and asset in line and named in line for line in failing), done.stdout


def test_an_unknown_asset_is_a_usage_error(home):
    done = crucible("check", "--asset", "nope", home=home)
    assert done.returncode == 2 and "choose one of" in done.stderr and done.stderr.strip().count("\n") == 0
