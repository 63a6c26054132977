"""The training input: the pipeline's sft_dataset folder, read as `datasets.Dataset`s of chats.

    files = split_files(folder, "train")          # train.parquet, or the Hub layout data/train-*.parquet
    train = load_split(folder, "train")           # one column, `messages`: [{role, content}, ...]
    dataset_fingerprint(folder)                   # sha256 over the Parquet files' names and bytes

Only `messages` is read; the provenance columns (dialogue id, source, license, config fingerprint, ...) stay in the
files. Roles are system, user, assistant and tool; execution results are user turns starting "Execution result:" or
tool turns, and are kept exactly as the model will see them at inference.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
from datasets import Dataset

ROLES = ("system", "user", "assistant", "tool")
SPLITS = ("train", "test")


class DatasetError(ValueError):
    """The dataset folder lacks a split, or its rows are not chats TRL can train on. One line."""


def split_files(folder: str | Path, split: str) -> list[Path]:
    """The split's Parquet files: `<split>.parquet`, else the Hub layout `data/<split>-*.parquet`; [] if none."""
    folder = Path(folder)
    single = folder / f"{split}.parquet"
    if single.is_file():
        return [single]
    return sorted((folder / "data").glob(f"{split}-*.parquet"))


def dataset_fingerprint(folder: str | Path) -> str:
    """sha256 (hex) over every split's Parquet files, name and bytes, in a fixed order."""
    digest = hashlib.sha256()
    folder = Path(folder)
    for split in SPLITS:
        for path in split_files(folder, split):
            digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
            with path.open("rb") as handle:
                while chunk := handle.read(1 << 20):
                    digest.update(chunk)
    return digest.hexdigest()


def _clean(messages: list[dict] | None, where: str) -> list[dict[str, str]]:
    if not messages:
        raise DatasetError(f"{where}: empty `messages`")
    chat = []
    for turn in messages:
        role, content = turn.get("role"), turn.get("content")
        if role not in ROLES:
            raise DatasetError(f"{where}: role {role!r} is not one of {', '.join(ROLES)}")
        chat.append({"role": role, "content": content or ""})
    if not any(turn["role"] == "assistant" for turn in chat):
        raise DatasetError(f"{where}: no assistant turn to train on")
    return chat


def read_chats(folder: str | Path, split: str) -> list[list[dict[str, str]]]:
    """Every row's chat, validated; raises DatasetError naming the file and row of the first bad one."""
    files = split_files(folder, split)
    chats = []
    for path in files:
        table = pq.read_table(path, columns=["messages"]) if "messages" in pq.read_schema(path).names else None
        if table is None:
            raise DatasetError(f"{path}: no `messages` column")
        for index, messages in enumerate(table.column("messages").to_pylist()):
            chats.append(_clean(messages, f"{path} row {index}"))
    return chats


def load_split(folder: str | Path, split: str, required: bool = True) -> Dataset | None:
    """The split as a Dataset with the single column `messages`; None when absent and not required."""
    if not split_files(folder, split):
        if required:
            raise DatasetError(f"dataset {folder}: no {split}.parquet nor data/{split}-*.parquet")
        return None
    chats = read_chats(folder, split)
    if not chats:
        if required:
            raise DatasetError(f"dataset {folder}: split {split} has no rows")
        return None
    return Dataset.from_dict({"messages": chats})


def iter_texts(folder: str | Path, split: str = "train") -> Iterator[str]:
    """Every turn's text (for training a tokenizer on the data)."""
    for chat in read_chats(folder, split):
        for turn in chat:
            yield turn["content"]
