"""The rows of an instruction dataset to import: a local JSONL, JSON or Parquet file, or a dataset id that
`datasets` streams (the `train` split unless the registry names another).

    for index, row in read_rows("data.jsonl", limit=300): ...

A JSONL line that is not a JSON object stops the import with one line naming the file and the line: the rows before
it are not imported either, so a fixed file imports the same rows again.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

from assets.imports.presets import BadImport

LOCAL_SUFFIXES = (".jsonl", ".json", ".parquet")


def is_local(data: str) -> bool:
    return Path(data).expanduser().exists() or data.endswith(LOCAL_SUFFIXES)


def _jsonl(path: Path) -> Iterator[dict]:
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise BadImport(f"{path}: line {number} is not valid JSON ({exc.msg} at column {exc.colno}); fix or "
                                f"remove that line") from None
            if not isinstance(row, dict):
                raise BadImport(f"{path}: line {number} is a JSON {type(row).__name__}, not an object with columns")
            yield row


def _json(path: Path) -> Iterator[dict]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadImport(f"{path}: not valid JSON ({exc}); give a JSON array of objects, JSONL or Parquet") from None
    if not isinstance(doc, list) or not all(isinstance(r, dict) for r in doc):
        raise BadImport(f"{path}: expected a JSON array of objects (one per row)")
    yield from doc


def _parquet(path: Path) -> Iterator[dict]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise BadImport(f"{path}: not a readable Parquet file ({str(exc).splitlines()[0][:200]})") from None
    for batch in table.iter_batches(batch_size=1024):
        yield from batch.to_pylist()


def _hub(dataset: str, split: str) -> Iterator[dict]:
    import datasets

    try:
        stream = datasets.load_dataset(dataset, split=split, streaming=True)
        yield from stream
    except Exception as exc:  # datasets raises many types (network, missing dataset, bad builder)
        raise BadImport(f"--data {dataset}: cannot stream it with `datasets` ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0][:200]}); give a local .jsonl/.json/.parquet file or a dataset "
                        f"id that is reachable") from None


def read_rows(data: str, limit: int | None = None, split: str = "train") -> Iterator[tuple[int, dict]]:
    """(row index, row) of the data, the first `limit` only when given."""
    if is_local(data):
        path = Path(data).expanduser()
        if not path.is_file():
            raise BadImport(f"--data {data}: no such file; give a .jsonl, .json or .parquet file or a dataset id")
        readers = {".jsonl": _jsonl, ".json": _json, ".parquet": _parquet}
        reader = readers.get(path.suffix.lower())
        if reader is None:
            raise BadImport(f"--data {data}: unknown file type {path.suffix!r}; use .jsonl, .json or .parquet")
        rows = reader(path)
    else:
        rows = _hub(data, split)
    return enumerate(islice(rows, limit) if limit else rows)
