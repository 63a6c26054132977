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

from resources.home import Home, home_field

UNPARTITIONED = "_all"
CATALOG_STORAGE = "v1.4.0"  # readable by the duckdb-cli shell as well as the Python library


def _home(home: Home | None) -> Home:
    """The home passed down, or for interactive use and tests the environment's."""
    return home if home is not None else Home.from_env()


def table_path(asset: str, partition: str | None = None, home: Home | None = None) -> Path:
    return _home(home).data / asset / f"{partition or UNPARTITIONED}.parquet"


def write_table(df: pl.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    df.write_parquet(tmp, compression="zstd", statistics=True)
    os.replace(tmp, path)


def table_partitions(asset: str, home: Home | None = None) -> list[str]:
    """The partitions of `asset` that have been written, sorted."""
    folder = _home(home).data / asset
    return sorted(p.stem for p in folder.glob("*.parquet")) if folder.is_dir() else []


def table_rows(asset: str, partitions: list[str], home: Home | None = None) -> int | None:
    """Rows of `asset` over `partitions` from the Parquet footers (no data read); None when any is missing."""
    paths = [table_path(asset, p, home) for p in partitions]
    if not paths or not all(p.is_file() for p in paths):
        return None
    return sum(pq.ParquetFile(p).metadata.num_rows for p in paths)


def read_table(asset: str, partitions: list[str] | None = None, exclude: list[str] | None = None,
               columns: list[str] | None = None, home: Home | None = None) -> pl.DataFrame:
    """The named partitions of `asset` (default: all written ones, minus `exclude`), concatenated; only `columns`
    when given (Parquet reads just those).

    Columns missing from older partitions come back as nulls, so a schema that grew still reads."""
    names = partitions if partitions is not None else table_partitions(asset, home)
    names = [n for n in names if n not in set(exclude or ())]
    frames = []
    for name in names:
        path = table_path(asset, name, home)
        if not path.is_file():
            raise FileNotFoundError(f"{asset} partition {name!r} has not been materialized ({path} is missing); "
                                    f"materialize it first")
        if columns is None:
            frames.append(pl.read_parquet(path))
            continue
        present = [c for c in columns if c in pl.read_parquet_schema(path)]
        # A column an older partition was written without reads back as nulls.
        frame = (pl.read_parquet(path, columns=present) if present
                 else pl.DataFrame({c: [None] * pq.read_metadata(path).num_rows for c in columns}))
        frames.append(frame.with_columns([pl.lit(None).alias(c) for c in columns if c not in frame.columns]))
    if not frames:
        return pl.DataFrame()
    return pl.concat(frames, how="diagonal_relaxed")


def catalog_path(home: Home | None = None) -> Path:
    return _home(home).catalog


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def refresh_catalog(home: Home | None = None) -> list[str]:
    """Rebuild the DuckDB catalog: one view per asset folder under data/; returns the view names. The views read the
    Parquet files at query time, so new partitions show up without a refresh; a refresh adds new assets, drops gone
    ones and rebinds views to the current columns.

    The catalog is derived data, so it is built in a temporary file and renamed over the old one: no writer ever
    waits for DuckDB's file lock (parallel runs, or a `duckdb` shell left open on the old file, which keeps reading
    the version it opened). It is written in DuckDB's v1.4 storage format so the `duckdb` shell from the duckdb-cli
    package (a release behind the Python library) opens it."""
    root = _home(home).data
    tables = sorted(d.name for d in root.iterdir() if d.is_dir() and any(d.glob("*.parquet"))) \
        if root.is_dir() else []
    path = catalog_path(home)
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


def catalog_summary(home: Home) -> list[tuple[str, int, int]]:
    """(view, rows, partitions) for every view of the refreshed catalog."""
    views = refresh_catalog(home)
    with duckdb.connect(str(catalog_path(home)), read_only=True) as con:
        return [(view, *con.execute(f"SELECT count(*), count(DISTINCT partition) FROM {_ident(view)}").fetchone())
                for view in views]


def query_catalog(home: Home, sql: str) -> str:
    """The result of `sql` over the refreshed catalog, as DuckDB prints it; duckdb.Error for a bad query."""
    refresh_catalog(home)
    with duckdb.connect(str(catalog_path(home)), read_only=True) as con:
        return str(con.sql(sql))


class ParquetIOManager(dg.ConfigurableIOManager):
    """Polars DataFrames as one Parquet file per asset partition, under the home's data/. The store also tells the
    assets their home (`paths`): every table, configs record, report and release of a run lives under one home."""

    home: str | None = home_field()

    @property
    def paths(self) -> Home:
        return Home.from_env(self.home)

    def _path(self, key: dg.AssetKey, partition: str | None) -> Path:
        return table_path("/".join(key.path), partition, self.paths)

    def handle_output(self, context: dg.OutputContext, obj: pl.DataFrame | None) -> None:
        if obj is None:
            return
        if not isinstance(obj, pl.DataFrame):
            raise TypeError(f"{context.asset_key.to_user_string()}: the Parquet IO manager stores polars DataFrames, "
                            f"got {type(obj).__name__}")
        partition = context.partition_key if context.has_partition_key else None
        path = self._path(context.asset_key, partition)
        write_table(obj, path)
        refresh_catalog(self.paths)
        context.add_output_metadata({"dagster/row_count": len(obj), "path": dg.MetadataValue.path(str(path))})

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
