"""What the stages' asset checks and metadata share: the non-empty check, drop-reason counts, table previews and the
outputs of a stage's multi-asset."""

from __future__ import annotations

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
