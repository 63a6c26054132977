"""What the stages' asset checks and metadata share: the non-empty check, drop-reason counts, table previews, the
outputs of a stage's multi-asset, and tables output with their content hash as data version. The checks that read
what was stored are in this package's modules (registry.py lists them)."""

from __future__ import annotations

import hashlib
import io
import warnings
from collections import Counter

import dagster as dg
import polars as pl

NOT_EMPTY_CHECK = "not_empty"


def not_empty_spec(asset: str, description: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(NOT_EMPTY_CHECK, asset=asset, description=description)


def not_empty_result(asset: str, df: pl.DataFrame, severity=dg.AssetCheckSeverity.ERROR) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(check_name=NOT_EMPTY_CHECK, asset_key=asset, passed=len(df) > 0, severity=severity,
                               metadata={"rows": len(df)})


def reason_metadata(counts: Counter) -> dict:
    """Drop reasons as one JSON map plus a number per reason (numbers are plotted over time by the UI)."""
    metadata = {"drop_reasons": dg.MetadataValue.json(dict(counts.most_common()))}
    metadata.update({f"dropped_{reason}": int(n) for reason, n in counts.items()})
    return metadata


def markdown_preview(df: pl.DataFrame, columns: list[str], rows: int = 5, width: int = 60) -> dg.MetadataValue:
    """The first rows as a markdown table, cells cut to `width` characters."""
    if not len(df):
        return dg.MetadataValue.md("(no rows)")

    def cell(value) -> str:
        text = " ".join(str(value).split()).replace("|", "\\|")
        return text if len(text) <= width else text[: width - 1] + "…"

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.select(columns).head(rows).iter_rows()]
    return dg.MetadataValue.md("\n".join(lines))


def stage_outs(group: str, descriptions: dict[str, str]) -> dict[str, dg.AssetOut]:
    """The outputs of a stage's multi-asset (its table and its side tables), all in one UI group."""
    return {name: dg.AssetOut(description=text, group_name=group) for name, text in descriptions.items()}


def content_version(df: pl.DataFrame) -> dg.DataVersion:
    """16 hex of the sha256 of the table's rows and schema (its Arrow IPC stream): equal tables, equal versions, so
    the UI tells a rerun that changed nothing from one that did."""
    sink = io.BytesIO()
    df.rechunk().write_ipc_stream(sink, compression="uncompressed")
    return dg.DataVersion(hashlib.sha256(sink.getvalue()).hexdigest()[:16])


def table_output(df: pl.DataFrame, output_name: str, metadata: dict | None = None) -> dg.Output:
    """A stage's table as an output with its content hash as data version."""
    with warnings.catch_warnings():  # data_version is a beta parameter; its warning would fill every run's log
        warnings.simplefilter("ignore", dg.BetaWarning)
        return dg.Output(df, output_name=output_name, data_version=content_version(df), metadata=metadata or {})
