"""Plots as PNG bytes, and as asset metadata: a file under $CRUCIBLE_HOME/reports/ plus the same image inline in
markdown, so the Dagster UI shows it on the materialization and the dataset card can reuse the file."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import dagster as dg

from assets.keys import VERIFIED_DIALOGUES
from resources.home import Home


def _figure():
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and in CI
    import matplotlib.pyplot as plt

    return plt


def _png(fig, plt) -> bytes:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def pass_rate_png(rates: list[float], title: str) -> bytes:
    """Share of problems verified by each programmer turn (cumulative)."""
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
    return _png(fig, plt)


def bar_png(counts: dict, title: str, xlabel: str, ylabel: str = "rows") -> bytes:
    """A bar per key (in the given order)."""
    plt = _figure()
    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=100)
    labels = [str(k) for k in counts]
    ax.bar(labels, list(counts.values()))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3, axis="y")
    return _png(fig, plt)


def line_png(xs: list, ys: list, title: str, xlabel: str, ylabel: str) -> bytes:
    plt = _figure()
    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=100)
    ax.plot(xs, ys, marker="." if len(xs) < 50 else None)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    return _png(fig, plt)


def png_metadata(png: bytes, path: Path, alt: str) -> dg.MetadataValue:
    """Write `png` to `path` and return it as inline markdown (plus the file's path) for asset metadata."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png)
    encoded = base64.b64encode(png).decode()
    return dg.MetadataValue.md(f"![{alt}](data:image/png;base64,{encoded})\n\n`{path}`")


def pass_rate_plot(rates: list[float], title: str, partition: str | None, home: Home,
                   asset: str = VERIFIED_DIALOGUES) -> dg.MetadataValue:
    path = home.reports / asset / f"{partition or '_all'}" / "pass_rate_by_turn.png"
    return png_metadata(pass_rate_png(rates, title), path, "pass rate by turn")


def histograms_png(panels: dict[str, dict[str, list[float]]], title: str, xlabel: str, ylabel: str = "rows",
                   edges: list[float] | None = None, labels: list[str] | None = None) -> bytes:
    """One subplot per panel (up to three a row), each series of it (label -> value per bin) an outline over the
    same bins, overlaid, the first one also shaded (so a later series drawn over it leaves it visible). Bins:
    numeric `edges` (one more than the values), or `labels`, one per bin, equally wide."""
    plt = _figure()
    cols = max(1, min(3, len(panels)))
    rows = max(1, -(-len(panels) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.4 * cols, 3.0 * rows + 0.4), dpi=100, squeeze=False)
    for ax, (name, series) in zip(axes.flat, panels.items()):
        for k, (label, values) in enumerate(series.items()):
            x = edges if edges is not None else list(range(len(values) + 1))
            if k == 0:
                ax.stairs(values, x, fill=True, alpha=0.25, color="C0")
            ax.stairs(values, x, label=label, linewidth=1.6, color=f"C{k}")
        if edges is None and labels:
            ax.set_xticks([i + 0.5 for i in range(len(labels))], labels, rotation=45, ha="right", fontsize=7)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.grid(alpha=0.3)
        if len(series) > 1:
            ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    return _png(fig, plt)
