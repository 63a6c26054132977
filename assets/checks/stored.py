"""What every stored-table check is built from: what it is given (`CheckInput`), what it returns (`Outcome`), and
how the table it judges is read back (from its Parquet file, never from the frame the asset held in memory).

A check here reads what was written, so a table edited by hand, a file replaced after its materialization, a
sandbox or runner that changed since the rows were verified, or a benchmark problem pasted in, each fail it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import dagster as dg
import polars as pl

from resources.home import Home
from resources.store import UNPARTITIONED, table_path


class CheckSkipped(Exception):
    """Nothing to judge (the partition was never written): reported as a skip, not a pass."""


@dataclass
class CheckInput:
    """What one evaluation of a check gets: the home, the partition (None for unpartitioned assets), the Dagster
    instance holding the materializations (None where none is reachable), and for checks that re-run code a
    callable returning the sandbox pool (its owner closes it). `sample`: how many rows a re-running check takes
    (0: every row)."""

    home: Home
    partition: str | None
    instance: dg.DagsterInstance | None = None
    pool: Callable | None = None
    sample: int = 16


@dataclass
class Outcome:
    """A check's verdict: passed or not, the first problem found (naming the row), and numbers for the UI."""

    passed: bool
    problem: str = ""
    metadata: dict = field(default_factory=dict)

    @classmethod
    def from_problems(cls, problems: list[str], **metadata) -> Outcome:
        return cls(not problems, problems[0] if problems else "", {"problems": len(problems), **metadata})


def stored_table(asset: str, check: CheckInput) -> pl.DataFrame:
    """The stored Parquet file of `asset` for the check's partition; CheckSkipped when it was never written."""
    path = table_path(asset, check.partition or UNPARTITIONED, check.home)
    if not path.is_file():
        raise CheckSkipped(f"{asset} partition {check.partition or UNPARTITIONED!r} is not stored ({path})")
    return pl.read_parquet(path)


def latest_materialization(asset: str, check: CheckInput) -> dg.AssetMaterialization | None:
    """The newest materialization of `asset` (this partition) the instance recorded; None without an instance or
    a record."""
    if check.instance is None:
        return None
    records = check.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset),
                              asset_partitions=[check.partition] if check.partition else None), limit=1).records
    return records[0].asset_materialization if records else None


def metadata_value(materialization: dg.AssetMaterialization | None, *names: str):
    """The first of `names` in the materialization's metadata, unwrapped; None when absent."""
    if materialization is None:
        return None
    for name in names:
        if name in materialization.metadata:
            value = materialization.metadata[name]
            return getattr(value, "value", value)
    return None


def row_label(row: dict, *columns: str) -> str:
    """How a problem names its row: the first of `columns` the row has a value for."""
    for column in columns:
        if row.get(column) not in (None, ""):
            return f"{column}={row[column]}"
    return "a row without an id"
