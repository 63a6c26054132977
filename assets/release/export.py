"""Export a dataset release in the column shape of a published code instruction dataset, each loadable with
`datasets`:

    summary = export_release(home, "magicoder", Path("out/magicoder"))                 # the latest sft_dataset table
    summary = export_release(home, "sharegpt", Path("out/sg"), sources=["stdlib"],
                             release=home.datasets / "crucible-code-feedback" / "<version>")  # a release folder
    load_dataset("parquet", data_files={"train": "out/magicoder/data/train-00000-of-00001.parquet"})

The formats (FORMATS), one converter each from an SFT row (assets/schemas.py SFT):
- `magicoder`: Magicoder-OSS-Instruct-75K's `problem`, `solution`, `lang`, `seed`. The solution is the last assistant
  message, prose and code fence included, as Magicoder's is the response text; the seed is the row's own `seed`, else
  the code of its `seed_id` in the seed_snippets table, else "".
- `code-feedback`: m-a-p/Code-Feedback's `id`, `messages`, whose roles are only user and assistant (and a leading
  system turn): an execution result in a `tool` turn becomes a user turn starting with "Execution result:".
- `aiev`: AutoCoder's AIEV-Instruct dialogues. AutoCoder did not publish its data set, so this shape follows the
  paper's roles, not a released file: `id`, `instruction`, `conversations` with roles `questioner` (the user turns
  that pose the problem or give feedback), `programmer` (assistant turns) and `interpreter` (execution results: tool
  turns and user turns that start with the execution prefix); a system turn stays `system`; and `tests`,
  `passed_turn`, `language`.
- `sharegpt`: `id`, `conversations` of {from, value}, from one of system / human / gpt; an execution result in a
  `tool` turn becomes a human turn with the prefix, as in code-feedback.

The export folder holds `data/<split>-00000-of-00001.parquet` per split with rows and a short README.md (format,
columns, source version, row counts, and the front matter the Hub viewer reads). It is built beside the output and
renamed into place; an existing folder is replaced only when it is an earlier export (its README carries
EXPORT_MARKER). Errors are one-line ExportErrors naming the input and what to do.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import yaml

from assets.generate.config import EXECUTION_PREFIX, LANGUAGE, UNIT_TESTS_TURN
from assets.keys import SEED_SNIPPETS, SFT_DATASET
from assets.release.sft_dataset import SPLITS, write_parquet
from assets.schemas import MESSAGES, SFT, conform, frame
from finetune.data import split_files
from resources.home import Home
from resources.store import read_table, table_partitions

EXPORT_MARKER = "<!-- crucible export -->"


class ExportError(ValueError):
    """One line: the input, what is wrong with it, what to do."""


# --- turns --------------------------------------------------------------------------------------------------------

def is_execution_result(turn: dict) -> bool:
    """A turn that shows a run's output: a tool turn, or a user turn that starts with the execution prefix (or is
    an AIEV-complete dialogue's closing turn: the unit tests, then the passing run under the execution prefix)."""
    content = turn["content"] or ""
    return turn["role"] == "tool" or (turn["role"] == "user" and (
        content.startswith(EXECUTION_PREFIX) or (content.startswith(UNIT_TESTS_TURN) and EXECUTION_PREFIX in content)))


def as_user_text(turn: dict) -> str:
    """A turn's content for a format without a tool role: an execution result starts with the execution prefix
    (added once: never to content that already carries it)."""
    content = turn["content"] or ""
    if turn["role"] != "tool" or is_execution_result({"role": "user", "content": content}):
        return content
    return f"{EXECUTION_PREFIX}\n{content}"


def chat_role(turn: dict) -> str:
    return "user" if turn["role"] == "tool" else turn["role"]


def aiev_role(turn: dict) -> str:
    if is_execution_result(turn):
        return "interpreter"
    return {"user": "questioner", "assistant": "programmer"}.get(turn["role"], turn["role"])


SHAREGPT_FROM = {"system": "system", "user": "human", "tool": "human", "assistant": "gpt"}


def last_answer(messages: list[dict]) -> str:
    return next((m["content"] or "" for m in reversed(messages) if m["role"] == "assistant"), "")


# --- one converter per format: an SFT row (dict) -> a row of the published columns ----------------------------------

def magicoder_row(row: dict) -> dict:
    return {"problem": row["instruction"], "solution": last_answer(row["messages"] or []),
            "lang": row["language"] or LANGUAGE, "seed": row["seed"] or ""}


def code_feedback_row(row: dict) -> dict:
    return {"id": row["id"], "messages": [{"role": chat_role(m), "content": as_user_text(m)}
                                          for m in row["messages"] or []]}


def aiev_row(row: dict) -> dict:
    return {"id": row["id"], "instruction": row["instruction"],
            "conversations": [{"role": aiev_role(m), "content": m["content"]} for m in row["messages"] or []],
            "tests": row["tests"], "passed_turn": row["passed_turn"], "language": row["language"] or LANGUAGE}


def sharegpt_row(row: dict) -> dict:
    return {"id": row["id"], "conversations": [{"from": SHAREGPT_FROM.get(m["role"], m["role"]),
                                                "value": as_user_text(m)} for m in row["messages"] or []]}


@dataclass(frozen=True)
class Format:
    schema: dict  # the published columns, in order, and their types
    follows: str  # what the shape follows, for the README
    convert: Callable[[dict], dict]


FORMAT_SPECS = {
    "magicoder": Format({"problem": pl.Utf8, "solution": pl.Utf8, "lang": pl.Utf8, "seed": pl.Utf8},
                        "the columns of Magicoder-OSS-Instruct-75K (ise-uiuc/Magicoder-OSS-Instruct-75K)",
                        magicoder_row),
    "code-feedback": Format({"id": pl.Utf8, "messages": MESSAGES},
                            "m-a-p/Code-Feedback: user/assistant messages, execution results as user turns "
                            f"starting with {EXECUTION_PREFIX!r}", code_feedback_row),
    "aiev": Format({"id": pl.Utf8, "instruction": pl.Utf8, "conversations": MESSAGES, "tests": pl.Utf8,
                    "passed_turn": pl.Int32, "language": pl.Utf8},
                   "AutoCoder's AIEV-Instruct roles (questioner, programmer, interpreter) as its paper describes "
                   "them: AutoCoder published no dataset", aiev_row),
    "sharegpt": Format({"id": pl.Utf8, "conversations": pl.List(pl.Struct({"from": pl.Utf8, "value": pl.Utf8}))},
                       "ShareGPT conversations (from: system/human/gpt); execution results as human turns starting "
                       f"with {EXECUTION_PREFIX!r}", sharegpt_row),
}
FORMATS = tuple(FORMAT_SPECS)


def convert(rows: pl.DataFrame, fmt: str) -> pl.DataFrame:
    """SFT rows in format `fmt`'s published columns."""
    spec = format_spec(fmt)
    return frame([spec.convert(row) for row in rows.iter_rows(named=True)], spec.schema)


def format_spec(fmt: str) -> Format:
    if fmt not in FORMAT_SPECS:
        raise ExportError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    return FORMAT_SPECS[fmt]


# --- reading ------------------------------------------------------------------------------------------------------

def read_sft(home: Home, release: Path | None = None) -> tuple[pl.DataFrame, str]:
    """The SFT rows (schema SFT) of the latest sft_dataset table, or of a release folder; and what was read."""
    if release is None:
        if not table_partitions(SFT_DATASET, home):
            raise ExportError(f"no {SFT_DATASET} table under {home.data}; run `crucible dataset` first")
        return conform(read_table(SFT_DATASET, home=home), SFT), f"{SFT_DATASET} table"
    frames = [pl.read_parquet(path).with_columns(pl.lit(split).alias("split"))
              for split in SPLITS for path in split_files(release, split)]
    if not frames:
        raise ExportError(f"release {release}: no data/train-*.parquet or data/test-*.parquet; give a release folder "
                          f"written by `crucible dataset` ({home.datasets}/<name>/<version>)")
    return conform(pl.concat(frames, how="diagonal_relaxed"), SFT), f"release {release}"


def only_sources(rows: pl.DataFrame, sources: list[str] | None, what: str) -> pl.DataFrame:
    if not sources:
        return rows
    known = sorted(rows["source"].drop_nulls().unique().to_list())
    unknown = sorted(set(sources) - set(known))
    if unknown:
        raise ExportError(f"{what}: no source {', '.join(unknown)}; its sources are {', '.join(known) or '(none)'}")
    return rows.filter(pl.col("source").is_in(sources))


def with_seed_code(rows: pl.DataFrame, home: Home) -> pl.DataFrame:
    """`seed` filled, where null, with the code of the row's `seed_id` in the seed_snippets table (when stored)."""
    wanted = set(rows.filter(pl.col("seed").is_null())["seed_id"].drop_nulls().to_list())
    if not wanted or not table_partitions(SEED_SNIPPETS, home):
        return rows
    seeds = read_table(SEED_SNIPPETS, columns=["seed_id", "code"], home=home)
    code = dict(seeds.filter(pl.col("seed_id").is_in(list(wanted))).unique("seed_id", keep="first").iter_rows())
    return rows.with_columns(pl.col("seed").fill_null(
        pl.col("seed_id").replace_strict(code, default=None, return_dtype=pl.Utf8)))


# --- writing ------------------------------------------------------------------------------------------------------

def check_output(output: Path) -> None:
    """Refuse an output that is a file, or a non-empty folder other than an earlier export."""
    if output.is_file():
        raise ExportError(f"--output {output} is a file; give a folder (new, empty, or an earlier export)")
    if output.is_dir() and any(output.iterdir()):
        readme = output / "README.md"
        if not (readme.is_file() and EXPORT_MARKER in readme.read_text(errors="replace")):
            raise ExportError(f"--output {output} is a non-empty folder that is not an earlier export (no "
                              f"README.md from `crucible export`); give a new or empty folder")


def type_name(dtype: pl.DataType) -> str:
    """string, int32, list<struct<role, content>>: a column's type as the README shows it."""
    if isinstance(dtype, pl.List):
        return f"list<{type_name(dtype.inner)}>"
    if isinstance(dtype, pl.Struct):
        return f"struct<{', '.join(field.name for field in dtype.fields)}>"
    return str(dtype).lower()


def readme(fmt: str, rows: dict[str, int], version: str | None, sources: list[str]) -> str:
    spec = FORMAT_SPECS[fmt]
    front = {"configs": [{"config_name": "default", "data_files": [
        {"split": split, "path": f"data/{split}-*.parquet"} for split in rows]}]}
    columns = "\n".join(f"- `{name}`: {type_name(dtype)}" for name, dtype in spec.schema.items())
    counts = "\n".join(f"| {split} | {n} |" for split, n in rows.items())
    files = ", ".join(f'"{s}": "data/{s}-00000-of-00001.parquet"' for s in rows)
    return (f"---\n{yaml.safe_dump(front, sort_keys=False)}---\n{EXPORT_MARKER}\n\n"
            f"# Crucible SFT dataset, `{fmt}` format\n\n"
            f"Exported by `crucible export --format {fmt}` from dataset version `{version or 'unknown'}` "
            f"(sources: {', '.join(sources) or '(none)'}). The shape follows {spec.follows}.\n\n"
            f"## Columns\n\n{columns}\n\n## Rows\n\n| split | rows |\n|---|---|\n{counts}\n\n"
            f"```python\nfrom datasets import load_dataset\n"
            f"ds = load_dataset(\"parquet\", data_files={{{files}}})\n```\n")


def write_export(rows: pl.DataFrame, fmt: str, output: Path, version: str | None) -> dict[str, int]:
    """Write the export folder atomically (built beside it, then renamed); rows per split written."""
    tmp = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    counts = {}
    for split in SPLITS:
        part = rows.filter(pl.col("split") == split)
        if len(part):  # an empty split gets no file: it could not be loaded
            write_parquet(convert(part, fmt), tmp / "data" / f"{split}-00000-of-00001.parquet")
            counts[split] = len(part)
    sources = sorted(rows["source"].drop_nulls().unique().to_list())
    (tmp / "README.md").write_text(readme(fmt, counts, version, sources))
    if output.exists():
        shutil.rmtree(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, output)
    return counts


def export_release(home: Home, fmt: str, output: Path, sources: list[str] | None = None,
                   release: Path | None = None) -> dict:
    """Export the latest sft_dataset table (or the release folder `release`), only the rows of `sources` when given,
    in format `fmt` to the folder `output`; a JSON-able summary."""
    format_spec(fmt)
    output = Path(output)
    check_output(output)
    table, what = read_sft(home, Path(release) if release is not None else None)
    rows = only_sources(table, sources, what)
    if not len(rows) or not rows["split"].is_in(list(SPLITS)).any():
        raise ExportError(f"{what}: no train or test rows{' for sources ' + ', '.join(sources) if sources else ''}; "
                          f"nothing to export (rebuild it with `crucible dataset`)")
    if fmt == "magicoder":
        rows = with_seed_code(rows, home)
    versions = sorted(rows["dataset_version"].drop_nulls().unique().to_list())
    version = ",".join(versions) or None
    counts = write_export(rows, fmt, output, version)
    return {"format": fmt, "output": str(output), "rows": counts, "columns": list(FORMAT_SPECS[fmt].schema),
            "sources": sorted(rows["source"].drop_nulls().unique().to_list()), "dataset_version": version}
