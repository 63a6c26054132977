"""`crucible export` and assets/release/export.py: a stored SFT table (and a release folder) exported in each
published shape, read back with `datasets`; the one-line errors; the command line."""

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from datasets import load_dataset

from assets.generate.config import EXECUTION_PREFIX
from assets.keys import SEED_SNIPPETS, SFT_DATASET
from assets.release.export import FORMATS, ExportError, export_release
from assets.release.sft_dataset import write_parquet
from assets.schemas import SEEDS, SFT, frame
from cli import build_parser
from resources.home import Home
from resources.store import table_path, write_table

ROOT = Path(__file__).resolve().parents[3]
RUN = f"{EXECUTION_PREFIX}\n```\nTraceback (most recent call last):\nAssertionError: add(1, 2) == 3\n```"
PASSING_RUN = (f"Unit tests:\n```python\nassert area(2) == 4\n```\n\n{EXECUTION_PREFIX}\n```\n"
               f"All 1 assertions passed (exit status 0).\n```")


def sft_row(id_, split, source, messages, **fields) -> dict:
    return {"id": id_, "split": split, "source": source, "messages": messages, "method": "function_instruct",
            "instruction": messages[1 if messages[0]["role"] == "system" else 0]["content"],
            "solution": "def f():\n    pass\n", "tests": "assert True\n", "turns": 1, "passed_turn": 1,
            "feedback_mode": "execution", "license": "MIT", "dataset_version": "v0123abcd", **fields}


ROWS = [
    # execution feedback as a user turn with the prefix; the row carries its seed
    sft_row("a-user-feedback", "train", "stdlib", [
        {"role": "user", "content": "Write add(a, b) returning the sum."},
        {"role": "assistant", "content": "```python\ndef add(a, b):\n    return a - b\n```"},
        {"role": "user", "content": f"{RUN}\n\nThe function subtracts; add instead."},
        {"role": "assistant", "content": "Fixed:\n```python\ndef add(a, b):\n    return a + b\n```"},
    ], turns=2, passed_turn=2, language="python", seed="def operator_add(a, b): return a + b", seed_id="seed-a"),
    # execution result as a tool turn (already prefixed) then the feedback; the seed comes from seed_snippets
    sft_row("b-tool-feedback", "test", "stdlib", [
        {"role": "user", "content": "Write mul(a, b)."},
        {"role": "assistant", "content": "```python\ndef mul(a, b):\n    return a + b\n```"},
        {"role": "tool", "content": RUN},
        {"role": "user", "content": "It adds; multiply."},
        {"role": "assistant", "content": "```python\ndef mul(a, b):\n    return a * b\n```"},
    ], turns=2, passed_turn=2, seed_id="seed-b"),
    # a system turn, a tool turn without the prefix, a language, a seed found nowhere
    sft_row("c-system-rust", "train", "mylib", [
        {"role": "system", "content": "You are a careful programmer."},
        {"role": "user", "content": "Write area(r) in Rust."},
        {"role": "assistant", "content": "```rust\nfn area(r: f64) -> f64 { r }\n```"},
        {"role": "tool", "content": "exit status 101: thread 'main' panicked"},
        {"role": "assistant", "content": "```rust\nfn area(r: f64) -> f64 { r * r }\n```"},
    ], turns=2, passed_turn=2, language="rust", seed_id="seed-missing"),
    # an AIEV-complete dialogue: the passing run is the last turn
    sft_row("d-aiev-complete", "test", "mylib", [
        {"role": "user", "content": "Write area(s) of a square."},
        {"role": "assistant", "content": "```python\ndef area(s):\n    return s * s\n```"},
        {"role": "user", "content": PASSING_RUN},
    ], language="python", seed_id="seed-d"),
]


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("CRUCIBLE_HOME", str(tmp_path / "home"))
    home = Home.from_env()
    write_table(frame(ROWS, SFT), table_path(SFT_DATASET, None, home))
    seeds = [{"seed_id": "seed-b", "source": "stdlib", "code": "def operator_mul(a, b):\n    return a * b\n"},
             {"seed_id": "seed-d", "source": "mylib", "code": "fn square(s: f64) -> f64 { s * s }"}]
    write_table(frame(seeds, SEEDS), table_path(SEED_SNIPPETS, "stdlib", home))
    return home


def load(output: Path, tmp_path: Path) -> dict[str, list[dict]]:
    """split -> rows, read with `datasets` from the export's Parquet files."""
    files = {p.name.split("-")[0]: str(p) for p in sorted((output / "data").glob("*.parquet"))}
    loaded = load_dataset("parquet", data_files=files, cache_dir=str(tmp_path / "hf-cache"))
    return {split: loaded[split].to_list() for split in loaded} | {"_columns": loaded[next(iter(loaded))].column_names}


def by_id(rows: list[dict]) -> dict[str, dict]:
    return {row["id"]: row for row in rows}


def test_magicoder_has_exactly_its_columns_the_last_answer_and_every_seed(home, tmp_path):
    summary = export_release(home, "magicoder", tmp_path / "out")
    assert summary["rows"] == {"train": 2, "test": 2} and summary["dataset_version"] == "v0123abcd"
    assert summary["columns"] == ["problem", "solution", "lang", "seed"]
    data = load(tmp_path / "out", tmp_path)
    assert data["_columns"] == ["problem", "solution", "lang", "seed"]
    rows = {row["problem"]: row for row in data["train"] + data["test"]}
    add = rows["Write add(a, b) returning the sum."]
    assert add["solution"] == "Fixed:\n```python\ndef add(a, b):\n    return a + b\n```"  # the last answer, prose too
    assert add["seed"] == "def operator_add(a, b): return a + b" and add["lang"] == "python"
    assert rows["Write mul(a, b)."]["seed"] == "def operator_mul(a, b):\n    return a * b\n"  # from seed_snippets
    assert rows["Write mul(a, b)."]["lang"] == "python"  # null language: the default
    assert rows["Write area(r) in Rust."]["seed"] == "" and rows["Write area(r) in Rust."]["lang"] == "rust"
    assert rows["Write area(s) of a square."]["seed"] == "fn square(s: f64) -> f64 { s * s }"
    # the last assistant message, not the passing run after it
    assert rows["Write area(s) of a square."]["solution"].startswith("```python\ndef area(s)")
    readme = (tmp_path / "out" / "README.md").read_text()
    assert "magicoder" in readme and "v0123abcd" in readme and "| train | 2 |" in readme and "`problem`" in readme


def test_code_feedback_has_only_chat_roles_and_the_prefix_once(home, tmp_path):
    export_release(home, "code-feedback", tmp_path / "cf")
    loaded = load_dataset(str(tmp_path / "cf"), cache_dir=str(tmp_path / "hf-cache"))  # the README's configs
    assert sorted(loaded) == ["test", "train"] and loaded["train"].column_names == ["id", "messages"]
    rows = by_id(loaded["train"].to_list() + loaded["test"].to_list())
    assert {m["role"] for r in rows.values() for m in r["messages"]} == {"system", "user", "assistant"}
    tool_row = rows["b-tool-feedback"]["messages"]
    assert [m["role"] for m in tool_row] == ["user", "assistant", "user", "user", "assistant"]
    assert tool_row[2]["content"] == RUN and tool_row[2]["content"].count(EXECUTION_PREFIX) == 1
    system_row = rows["c-system-rust"]["messages"]
    assert system_row[0] == {"role": "system", "content": "You are a careful programmer."}
    assert system_row[3] == {"role": "user", "content": f"{EXECUTION_PREFIX}\nexit status 101: thread 'main' panicked"}
    # user turns are left as written
    assert rows["a-user-feedback"]["messages"][2]["content"] == f"{RUN}\n\nThe function subtracts; add instead."


def test_aiev_names_questioner_programmer_and_interpreter(home, tmp_path):
    export_release(home, "aiev", tmp_path / "aiev")
    data = load(tmp_path / "aiev", tmp_path)
    assert data["_columns"] == ["id", "instruction", "conversations", "tests", "passed_turn", "language"]
    rows = by_id(data["train"] + data["test"])
    roles = {i: [m["role"] for m in r["conversations"]] for i, r in rows.items()}
    assert roles["a-user-feedback"] == ["questioner", "programmer", "interpreter", "programmer"]
    assert roles["b-tool-feedback"] == ["questioner", "programmer", "interpreter", "questioner", "programmer"]
    assert roles["c-system-rust"] == ["system", "questioner", "programmer", "interpreter", "programmer"]
    assert roles["d-aiev-complete"] == ["questioner", "programmer", "interpreter"]
    assert rows["b-tool-feedback"]["conversations"][2]["content"] == RUN
    assert rows["a-user-feedback"]["passed_turn"] == 2 and rows["b-tool-feedback"]["language"] == "python"
    assert rows["c-system-rust"]["instruction"] == "Write area(r) in Rust." and rows["c-system-rust"]["tests"]


def test_sharegpt_from_and_value(home, tmp_path):
    export_release(home, "sharegpt", tmp_path / "sg")
    data = load(tmp_path / "sg", tmp_path)
    assert data["_columns"] == ["id", "conversations"]
    rows = by_id(data["train"] + data["test"])
    assert {t["from"] for r in rows.values() for t in r["conversations"]} == {"system", "human", "gpt"}
    tool_row = rows["b-tool-feedback"]["conversations"]
    assert [t["from"] for t in tool_row] == ["human", "gpt", "human", "human", "gpt"]
    assert tool_row[2]["value"].count(EXECUTION_PREFIX) == 1
    assert rows["c-system-rust"]["conversations"][3]["value"].startswith(f"{EXECUTION_PREFIX}\nexit status 101")


def test_sources_filter_and_re_export_over_an_earlier_export(home, tmp_path):
    out = tmp_path / "out"
    export_release(home, "sharegpt", out)
    summary = export_release(home, "code-feedback", out, sources=["mylib"])
    assert summary["sources"] == ["mylib"] and summary["rows"] == {"train": 1, "test": 1}
    data = load(out, tmp_path)
    assert data["_columns"] == ["id", "messages"]  # the earlier sharegpt export was replaced
    assert sorted(r["id"] for r in data["train"] + data["test"]) == ["c-system-rust", "d-aiev-complete"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]  # no temporary folder left


def test_a_release_folder_exports_without_the_table(tmp_path, monkeypatch):
    monkeypatch.setenv("CRUCIBLE_HOME", str(tmp_path / "empty-home"))
    release = tmp_path / "datasets" / "crucible-code-feedback" / "v0123abcd"
    table = frame(ROWS, SFT)
    for split in ("train", "test"):
        write_parquet(table.filter(pl.col("split") == split), release / "data" / f"{split}-00000-of-00001.parquet")
    summary = export_release(Home.from_env(), "magicoder", tmp_path / "out", sources=["stdlib"], release=release)
    assert summary["rows"] == {"train": 1, "test": 1} and summary["dataset_version"] == "v0123abcd"
    data = load(tmp_path / "out", tmp_path)
    # no seed_snippets in this home: a row without its own seed gets ""
    assert {r["problem"]: r["seed"] for r in data["train"] + data["test"]} == {
        "Write add(a, b) returning the sum.": "def operator_add(a, b): return a + b", "Write mul(a, b).": ""}


def one_line_error(call) -> str:
    with pytest.raises(ExportError) as caught:
        call()
    assert "\n" not in str(caught.value)
    return str(caught.value)


def test_errors_are_one_line_and_say_what_to_do(home, tmp_path, monkeypatch):
    assert "crucible dataset" in one_line_error(
        lambda: export_release(Home(tmp_path / "nothing"), "aiev", tmp_path / "o1"))
    error = one_line_error(lambda: export_release(home, "aiev", tmp_path / "o2", sources=["mylib", "nope"]))
    assert "nope" in error and "mylib, stdlib" in error
    error = one_line_error(lambda: export_release(home, "alpaca", tmp_path / "o3"))
    assert "alpaca" in error and "magicoder, code-feedback, aiev, sharegpt" in error
    assert "no data/train" in one_line_error(
        lambda: export_release(home, "aiev", tmp_path / "o4", release=tmp_path / "not-a-release"))
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    assert "not an earlier export" in one_line_error(lambda: export_release(home, "aiev", taken))
    assert (taken / "notes.txt").read_text() == "mine" and not (taken / "data").exists()
    empty_home = Home(tmp_path / "empty")
    write_table(frame([], SFT), table_path(SFT_DATASET, None, empty_home))
    assert "nothing to export" in one_line_error(lambda: export_release(empty_home, "aiev", tmp_path / "o5"))
    assert not any((tmp_path / name).exists() for name in ("o1", "o2", "o3", "o4", "o5"))


def test_the_command_line_choices_are_the_formats():
    export = build_parser().parse_args(["export", "--format", "aiev", "--output", "x"])
    assert export.format == "aiev" and export.sources is None and export.release is None
    action = next(a for a in build_parser()._subparsers._group_actions[0].choices["export"]._actions
                  if a.dest == "format")
    assert tuple(action.choices) == FORMATS


def crucible(*args: str, home: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "cli.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "CRUCIBLE_HOME": str(home.root), "HOME": str(home.root)})


def test_crucible_export_prints_a_summary_or_one_line_error(home, tmp_path):
    done = crucible("export", "--format", "sharegpt", "--output", str(tmp_path / "sg"), "--sources", "stdlib",
                    home=home)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout)
    assert summary["format"] == "sharegpt" and summary["rows"] == {"train": 1, "test": 1}
    assert summary["columns"] == ["id", "conversations"] and summary["sources"] == ["stdlib"]
    assert (tmp_path / "sg" / "data" / "test-00000-of-00001.parquet").is_file()
    bad = crucible("export", "--format", "aiev", "--output", str(tmp_path / "x"), "--sources", "nope", home=home)
    assert bad.returncode == 2 and bad.stdout == ""
    errors = [line for line in bad.stderr.splitlines() if line.startswith("crucible: error:")]
    assert len(errors) == 1 and "nope" in errors[0] and "mylib, stdlib" in errors[0]
