"""File helpers shared by the model, training and evaluation code; standard library only, so the trainer subprocess
can import it without loading Dagster."""

import hashlib
from pathlib import Path


def sha256_file(path: str | Path, chunk: int = 8 << 20) -> str:
    """The sha256 (hex) of a file's bytes, read in chunks (model files are gigabytes)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()
