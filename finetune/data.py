"""The training input: the pipeline's sft_dataset folder, or a Hub dataset in the same layout, read as
`datasets.Dataset`s of chats.

    folder = resolve_dataset("me/crucible-sft@v-1a2b3c")   # a Hub id[@revision] -> its snapshot; a folder as it is
    hub_source(folder)                            # ("me/crucible-sft", "<commit>") for a Hub snapshot, else None
    files = split_files(folder, "train")          # train.parquet, or the Hub layout data/train-*.parquet
    train = load_split(folder, "train")           # one column, `messages`: [{role, content}, ...]
    dataset_fingerprint(folder)                   # sha256 over the Parquet files' names and bytes

Only `messages` is read; the provenance columns (dialogue id, source, license, config fingerprint, ...) stay in the
files. Roles are system, user, assistant and tool; execution results are user turns starting "Execution result:" or
tool turns, and are kept exactly as the model will see them at inference.

A Hub dataset (`namespace/name`, optionally `@revision`: a branch, a tag such as the `v-<version>` a Crucible
upload gets, or a commit) is fetched with huggingface_hub's `snapshot_download` — only its split Parquet files and
card — into the huggingface_hub cache (HF_HUB_CACHE), from HF_ENDPOINT when set, with HF_TOKEN for private repos.
With HF_HUB_OFFLINE=1 only what the cache already holds is used. A spec that is an existing path is always a folder.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
from datasets import Dataset

ROLES = ("system", "user", "assistant", "tool")
SPLITS = ("train", "test")
# namespace/name[@revision]; the name rules themselves are huggingface_hub's (validate_repo_id).
HUB_SPEC = re.compile(r"^(?P<repo>[A-Za-z0-9][\w.-]*/[\w.-]+)(?:@(?P<revision>[^\s@]+))?$")
# What a training run needs from a Hub dataset: the splits in either layout, and the card.
HUB_FILES = [f"{split}.parquet" for split in SPLITS] + [f"data/{split}-*.parquet" for split in SPLITS] + ["README.md"]


class DatasetError(ValueError):
    """The dataset folder lacks a split, or its rows are not chats TRL can train on. One line."""


def parse_hub_spec(spec: str) -> tuple[str, str | None] | None:
    """(repo id, revision or None) of `namespace/name[@revision]`; None for anything else."""
    match = HUB_SPEC.match(spec.strip())
    return (match["repo"], match["revision"]) if match else None


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def download_dataset(repo_id: str, revision: str | None = None) -> Path:
    """The snapshot folder of a Hub dataset's splits and card at `revision` (default: main), fetched into the
    huggingface_hub cache (only the cache with HF_HUB_OFFLINE=1). Raises DatasetError (one line) when it cannot."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    where = f"{repo_id}@{revision}" if revision else repo_id
    try:
        validate_repo_id(repo_id)
    except HFValidationError as err:
        raise DatasetError(f"dataset {where}: not a local folder, nor a valid Hub dataset id "
                           f"({str(err).splitlines()[0]}); give a folder or namespace/name[@revision]") from err
    try:
        folder = snapshot_download(repo_id, repo_type="dataset", revision=revision, allow_patterns=HUB_FILES,
                                   endpoint=os.environ.get("HF_ENDPOINT") or None, local_files_only=_offline())
    except Exception as err:  # not found, no network, offline without a cached copy, auth: one line for all
        cause = " ".join(str(err).split())[:240]
        hint = "unset HF_HUB_OFFLINE or fetch it once online" if _offline() else "check the id, the revision, " \
               "HF_ENDPOINT and HF_TOKEN"
        raise DatasetError(f"dataset {where}: not a local folder, and the Hub dataset cannot be fetched "
                           f"({type(err).__name__}: {cause}); {hint}, or give a local folder") from err
    return Path(folder)


def resolve_dataset(spec: str | Path) -> Path:
    """The folder to train on: `spec` itself when it is an existing path or no Hub id; else the Hub dataset
    `namespace/name[@revision]` downloaded (see `download_dataset`)."""
    path = Path(spec).expanduser()
    parsed = None if path.exists() else parse_hub_spec(str(spec))
    return download_dataset(*parsed) if parsed else path


def hub_source(folder: str | Path, repo_type: str = "dataset") -> tuple[str, str] | None:
    """(repo id, commit) when `folder` is a snapshot of a Hub repo of `repo_type` in the huggingface_hub cache
    (.../datasets--<namespace>--<name>/snapshots/<commit>; models--... for a model), else None."""
    from huggingface_hub.constants import REPO_ID_SEPARATOR

    folder = Path(folder)
    repo_dir = folder.parent.parent.name
    if folder.parent.name != "snapshots" or not repo_dir.startswith(f"{repo_type}s{REPO_ID_SEPARATOR}"):
        return None
    parts = repo_dir.split(REPO_ID_SEPARATOR)[1:]
    return ("/".join(parts), folder.name) if len(parts) == 2 else None


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
