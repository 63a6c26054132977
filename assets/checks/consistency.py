"""Checks that compare a stored table with its neighbours: the pass-rate floor (kept rows against the rejects table
the same step wrote), no duplicate problem statements across every stored partition, and no problem or root problem
in both splits of the stored SFT dataset."""

from __future__ import annotations

import polars as pl

from assets.checks.stored import CheckInput, CheckSkipped, Outcome, stored_table
from assets.curate.dedup_layers import normalize
from assets.release.sft_split import lineage, root_leaks
from resources.store import read_table

# Share of attempted items that should end verified. The bundled 1.5B teacher keeps 0.4-0.8 of its problems and
# dialogues (benchmarks/README.md); below a quarter a prompt, a model or the sandbox is usually broken.
PASS_RATE_FLOOR = 0.25


def pass_rate_floor(asset: str, rejects: str, check: CheckInput, floor: float = PASS_RATE_FLOOR) -> Outcome:
    """kept / (kept + rejected) of the stored partition, against `floor` (a warning, not an error: a hard seed
    source can sit below it)."""
    kept = len(stored_table(asset, check))
    try:
        rejected = len(stored_table(rejects, check))
    except CheckSkipped:  # no rejects table stored for this partition: nothing was rejected
        rejected = 0
    attempted = kept + rejected
    rate = kept / attempted if attempted else 0.0
    problem = [] if attempted and rate >= floor else [
        f"{kept} of {attempted} kept ({rate:.0%}), below the floor of {floor:.0%}; look at {rejects}'s reasons"]
    return Outcome.from_problems(problem, kept=kept, rejected=rejected, pass_rate=round(rate, 4), floor=floor)


def no_duplicate_instructions(asset: str, id_column: str, check: CheckInput) -> Outcome:
    """No two stored rows of one method, in this partition or any other of `asset`, state the same problem
    (normalised text): what dedup's exact layer promised, read back."""
    mine = stored_table(asset, check).select(id_column, "instruction", "method")
    others = read_table(asset, exclude=[check.partition] if check.partition else None,
                        columns=[id_column, "instruction", "method"], home=check.home) \
        if check.partition else pl.DataFrame()
    seen: dict[tuple[str, str], str] = {}
    for row in (others.to_dicts() if len(others) else []):
        seen.setdefault((row["method"] or "", normalize(row["instruction"])), row[id_column])
    problems = []
    for row in mine.to_dicts():
        key = (row["method"] or "", normalize(row["instruction"]))
        if key in seen:
            problems.append(f"{id_column}={row[id_column]}: same problem statement as {seen[key]}")
        else:
            seen[key] = row[id_column]
    return Outcome.from_problems(problems, rows=len(mine))


def splits_disjoint(asset: str, check: CheckInput) -> Outcome:
    """No problem, and no root problem (following parent_id through the stored problem tables), has rows in both
    splits of the stored dataset."""
    table = stored_table(asset, check)
    both = table.group_by("problem_id").agg(pl.col("split").n_unique().alias("n")).filter(pl.col("n") > 1)
    problems = [f"problem_id={p}: rows in both train and test" for p in both["problem_id"].to_list()]
    problems += [f"root problem {r}: descendants in both train and test"
                 for r in (root_leaks(table, lineage(check.home)) if len(table) else [])]
    return Outcome.from_problems(problems, rows=len(table))
