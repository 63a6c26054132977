"""The mix of an SFT release: how much of each method's and each source's rows it takes, after decontamination and
before the split, drawn by a seeded hash of the row id (so adding rows does not reshuffle the others).

    kept, report = apply_mix(dialogues, {"method:evol_instruct": 0.5, "source:stdlib": 1000}, seed=0)
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import polars as pl

from assets.generate.methods import DEFAULT_METHOD, METHODS
from assets.schemas import IMPORT_METHOD_PREFIX

MIX_COLUMNS = ("method", "source")  # the order mix entries apply in
MIX_HELP = ("write {'method:<name>' or 'source:<name>': a share in [0, 1] or a row cap (a whole number > 1)}, "
            "e.g. {'method:evol_instruct': 0.5, 'source:stdlib': 1000}")


@dataclass(frozen=True)
class MixEntry:
    key: str  # as written: "method:evol_instruct"
    column: str  # method | source
    value: str  # evol_instruct
    requested: float

    def keep(self, rows: int) -> int:
        """Rows of a group of `rows` this entry keeps."""
        if self.requested <= 1:  # rounded half up; the epsilon keeps 0.35 * 10 from rounding to 3
            return math.floor(self.requested * rows + 0.5 + 1e-9)
        return min(rows, int(self.requested))


def known_method(name: str) -> bool:
    return name in METHODS or (name.startswith(IMPORT_METHOD_PREFIX) and len(name) > len(IMPORT_METHOD_PREFIX))


def parse_mix(mix: dict[str, float]) -> list[MixEntry]:
    """The mix's entries in the order they apply, or a one-line ValueError naming the bad key and what to write."""
    entries = []
    for key, value in mix.items():
        column, _, name = key.partition(":")
        if column not in MIX_COLUMNS or not name.strip():
            raise ValueError(f"sft_dataset mix key {key!r} is not valid: {MIX_HELP}")
        if column == "method" and not known_method(name):
            raise ValueError(f"sft_dataset mix key {key!r} names no generation method: use method:<one of "
                             f"{', '.join(METHODS)}> or method:{IMPORT_METHOD_PREFIX}<preset>")
        if not math.isfinite(value) or value < 0 or (value > 1 and value != int(value)):
            raise ValueError(f"sft_dataset mix {key!r}: {value} is neither a share nor a row cap: {MIX_HELP}")
        entries.append(MixEntry(key, column, name, float(value)))
    return sorted(entries, key=lambda e: (MIX_COLUMNS.index(e.column), e.value))


def mix_rank(seed: int, key: str, row_id: str) -> str:
    """The order rows of a group are taken in: a seeded hash of the row id, so a row's place among the others does
    not depend on which other rows exist."""
    return hashlib.sha256(f"mix:{seed}:{key}:{row_id}".encode()).hexdigest()


def with_method(dialogues: pl.DataFrame) -> pl.DataFrame:
    """Rows made before methods existed have no method: they are function_instruct rows."""
    if "method" not in dialogues.columns:
        dialogues = dialogues.with_columns(pl.lit(None, pl.Utf8).alias("method"))
    return dialogues.with_columns(pl.col("method").fill_null(DEFAULT_METHOD))


def apply_mix(dialogues: pl.DataFrame, mix: dict[str, float], seed: int) -> tuple[pl.DataFrame, list[dict]]:
    """The rows the mix keeps, and per entry what it asked for and the rows of its group it kept and dropped."""
    report = []
    for entry in parse_mix(mix):
        if not len(dialogues):
            report.append({"group": entry.key, "requested": entry.requested, "rows": 0, "kept": 0, "dropped": 0})
            continue
        group = dialogues.filter(pl.col(entry.column) == entry.value)["dialogue_id"].to_list()
        ranked = sorted(group, key=lambda row_id: mix_rank(seed, entry.key, row_id))
        kept = entry.keep(len(ranked))
        dialogues = dialogues.filter(~pl.col("dialogue_id").is_in(ranked[kept:]))
        report.append({"group": entry.key, "requested": entry.requested, "rows": len(ranked), "kept": kept,
                       "dropped": len(ranked) - kept})
    return dialogues, report
