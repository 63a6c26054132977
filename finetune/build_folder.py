"""Building a cached model folder atomically: in a temporary folder beside it, renamed into place when complete.

    with built_once(target, marker="config.json") as tmp:
        model.save_pretrained(tmp)

A crash leaves no half-written target; if another process finished the same target meanwhile (its marker file is
there), the rename fails and theirs is kept: a folder built from the same inputs is as good as ours.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def built_once(target: Path, marker: str) -> Iterator[Path]:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        yield tmp
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / marker).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
