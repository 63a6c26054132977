"""Storage: every asset is a Parquet file per partition under $CRUCIBLE_HOME/data/<asset>/<partition>.parquet.

    ParquetIOManager()                       # the Dagster IO manager ("io_manager")
    read_table("verified_dialogues")         # every partition, concatenated (polars)
    read_table("seed_snippets", ["stdlib"])  # some partitions
    refresh_catalog()                        # $CRUCIBLE_HOME/crucible.duckdb: a view per asset, over its Parquet

`duckdb .crucible/crucible.duckdb` then answers questions across the lineage, e.g.
    SELECT reason, count(*) FROM dialogue_rejects GROUP BY ALL;
    SELECT split, count(*) FROM sft_dataset GROUP BY ALL;
Every view has the asset's columns plus `partition` (the seed source, or `_all`).

Written here rather than taken from dagster-polars: its releases for dagster 1.13 break on polars 2.x (it passes
`rechunk` to scan_parquet, which polars 2 removed; MACHINE-FACTS), and pinning polars below 2 for the sake of ~60
lines of IO would hold back every other table. Writes are atomic (temporary file + rename), so a run killed mid-write
leaves the previous version of the partition intact.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pyarrow.parquet as pq

from resources.home import Home

UNPARTITIONED = "_all"
CATALOG_STORAGE = "v1.4.0"  # readable by the duckdb-cli shell as well as the Python library


def data_dir() -> Path:
    return Home.from_env().data


def table_path(asset: str, partition: str | None = None) -> Path:
    return data_dir() / asset / f"{partition or UNPARTITIONED}.parquet"


def write_table(df: pl.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    df.write_parquet(tmp, compression="zstd", statistics=True)
    os.replace(tmp, path)


def table_partitions(asset: str) -> list[str]:
    """The partitions of `asset` that have been written, sorted."""
    folder = data_dir() / asset
    return sorted(p.stem for p in folder.glob("*.parquet")) if folder.is_dir() else []


def table_rows(asset: str, partitions: list[str]) -> int | None:
    """Rows of `asset` over `partitions` from the Parquet footers (no data read); None when any is missing."""
    paths = [table_path(asset, p) for p in partitions]
    if not paths or not all(p.is_file() for p in paths):
        return None
    return sum(pq.ParquetFile(p).metadata.num_rows for p in paths)


def read_table(asset: str, partitions: list[str] | None = None, exclude: list[str] | None = None,
               columns: list[str] | None = None) -> pl.DataFrame:
    """The named partitions of `asset` (default: all written ones, minus `exclude`), concatenated; only `columns`
    when given (Parquet reads just those).

    Columns missing from older partitions come back as nulls, so a schema that grew still reads."""
    names = partitions if partitions is not None else table_partitions(asset)
    names = [n for n in names if n not in set(exclude or ())]
    frames = []
    for name in names:
        path = table_path(asset, name)
        if not path.is_file():
            raise FileNotFoundError(f"{asset} partition {name!r} has not been materialized ({path} is missing); "
                                    f"materialize it first")
        frames.append(pl.read_parquet(path, columns=columns))
    if not frames:
        return pl.DataFrame()
    return pl.concat(frames, how="diagonal_relaxed")


def catalog_path() -> Path:
    return Home.from_env().catalog


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def refresh_catalog() -> list[str]:
    """Rebuild the DuckDB catalog: one view per asset folder under data/; returns the view names. The views read the
    Parquet files at query time, so new partitions show up without a refresh; a refresh adds new assets, drops gone
    ones and rebinds views to the current columns.

    The catalog is derived data, so it is built in a temporary file and renamed over the old one: no writer ever
    waits for DuckDB's file lock (parallel runs, or a `duckdb` shell left open on the old file, which keeps reading
    the version it opened). It is written in DuckDB's v1.4 storage format so the `duckdb` shell from the duckdb-cli
    package (a release behind the Python library) opens it."""
    root = data_dir()
    tables = sorted(d.name for d in root.iterdir() if d.is_dir() and any(d.glob("*.parquet"))) \
        if root.is_dir() else []
    path = catalog_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        with duckdb.connect(str(tmp), config={"storage_compatibility_version": CATALOG_STORAGE}) as con:
            for table in tables:
                files = str((root / table).resolve() / "*.parquet").replace("'", "''")
                con.execute(
                    f"CREATE VIEW {_ident(table)} AS SELECT * EXCLUDE (filename), "
                    f"regexp_extract(filename, '([^/]+)\\.parquet$', 1) AS partition "
                    f"FROM read_parquet('{files}', union_by_name = true, filename = true)")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
        tmp.with_name(tmp.name + ".wal").unlink(missing_ok=True)
    return tables


class ParquetIOManager(dg.ConfigurableIOManager):
    """Polars DataFrames as one Parquet file per asset partition, under $CRUCIBLE_HOME/data (read when the IO manager
    is used, so one setting moves every table, cache and report together)."""

    def _path(self, key: dg.AssetKey, partition: str | None) -> Path:
        return table_path("/".join(key.path), partition)

    def handle_output(self, context: dg.OutputContext, obj: pl.DataFrame | None) -> None:
        if obj is None:
            return
        if not isinstance(obj, pl.DataFrame):
            raise TypeError(f"{context.asset_key.to_user_string()}: the Parquet IO manager stores polars DataFrames, "
                            f"got {type(obj).__name__}")
        partition = context.partition_key if context.has_partition_key else None
        path = self._path(context.asset_key, partition)
        write_table(obj, path)
        refresh_catalog()
        context.add_output_metadata({"rows": len(obj), "path": dg.MetadataValue.path(str(path))})

    def load_input(self, context: dg.InputContext) -> pl.DataFrame:
        key = context.asset_key
        if context.has_asset_partitions:
            partitions = list(context.asset_partition_keys)
        else:
            partitions = [None]
        frames = []
        for partition in partitions:
            path = self._path(key, partition)
            if not path.is_file():
                raise FileNotFoundError(f"input {key.to_user_string()} partition {partition or UNPARTITIONED!r} is "
                                        f"missing ({path}); materialize it first")
            frames.append(pl.read_parquet(path))
        return frames[0] if len(frames) == 1 else pl.concat(frames, how="diagonal_relaxed")
