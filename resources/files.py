"""File helpers shared by the model, training and evaluation code; standard library only, so the trainer subprocess
can import it without loading Dagster."""

import contextlib
import fcntl
import hashlib
from collections.abc import Iterator
from pathlib import Path


def sha256_file(path: str | Path, chunk: int = 8 << 20) -> str:
    """The sha256 (hex) of a file's bytes, read in chunks (model files are gigabytes)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def model_files_sha256(folder: str | Path) -> str:
    """A hash of what a checkpoint answers with: every file at the folder's top level (weights, config, tokenizer)
    but README.md, the model card evaluation edits. checkpoint-N subfolders (resume state) are left out."""
    digest = hashlib.sha256()
    for path in sorted(p for p in Path(folder).iterdir() if p.is_file() and p.name != "README.md"):
        digest.update(f"{path.name}\0{sha256_file(path)}\n".encode())
    return digest.hexdigest()


@contextlib.contextmanager
def exclusive_lock(lock_path: str | Path) -> Iterator[None]:
    """One holder of `lock_path` at a time, across processes (an assembly, an export). flock is released by the
    kernel when its holder dies, so a killed holder never leaves the lock held."""
    with Path(lock_path).open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def jsonl_lines(path: str | Path):
    """(line number, parsed value or None, error message or None) for every non-blank line of a JSONL file; a
    malformed line is reported, never raised, so callers can say which line to fix."""
    import json

    with Path(path).open(encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield number, json.loads(line), None
            except json.JSONDecodeError as exc:
                yield number, None, exc.msg
