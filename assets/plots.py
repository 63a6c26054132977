"""Plots for asset metadata: a PNG file under $CRUCIBLE_HOME/reports/ and the same image inline in markdown, so the
Dagster UI shows it on the materialization and the dataset card can reuse the file."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import dagster as dg

from resources.home import crucible_home


def _figure():
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and in CI
    import matplotlib.pyplot as plt

    return plt


def pass_rate_plot(rates: list[float], title: str, partition: str | None,
                   asset: str = "verified_dialogues") -> dg.MetadataValue:
    plt = _figure()
    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=100)
    turns = list(range(1, len(rates) + 1))
    ax.plot(turns, [100 * r for r in rates], marker="o")
    ax.set_xticks(turns)
    ax.set_ylim(0, 100)
    ax.set_xlabel("programmer turn")
    ax.set_ylabel("verified by this turn (%)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    path = crucible_home() / "reports" / asset / f"{partition or '_all'}" / "pass_rate_by_turn.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(buffer.getvalue())
    encoded = base64.b64encode(buffer.getvalue()).decode()
    return dg.MetadataValue.md(f"![pass rate by turn](data:image/png;base64,{encoded})\n\n`{path}`")
