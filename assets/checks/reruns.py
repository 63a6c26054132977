"""Re-verification: a seeded random sample of a stored table's rows, their final code with their tests, run again
in the sandbox outside the verdict cache. A row whose code was edited, a row that was never really verified, or a
sandbox or runner that changed since the rows were verified fails it."""

from __future__ import annotations

import hashlib

import polars as pl

from assets.checks.stored import CheckInput, Outcome, stored_table
from assets.generate.code_languages import code_language
from assets.generate.config import PYTHON
from assets.schemas import unverified_imports


def sample_rows(df: pl.DataFrame, size: int, partition: str | None) -> pl.DataFrame:
    """`size` rows drawn with a seed taken from the partition name (0 or more than the table: every row), so the
    same partition is checked on the same rows until it changes."""
    if size <= 0 or size >= len(df):
        return df
    seed = int(hashlib.sha256((partition or "").encode()).hexdigest()[:8], 16)
    return df.sample(n=size, seed=seed)


def _program(key: str, row: dict) -> dict:
    """A row's solution with its tests, as its language's program (Python when the row names none)."""
    lang = code_language(row.get("language") or PYTHON)
    return {"id": key, "code": lang.program(row["solution"] or "", row["tests"] or ""), "language": lang.name}


def reruns_pass(asset: str, id_column: str, check: CheckInput) -> Outcome:
    """The check: every sampled row's `solution` passes its `tests` when run again. Imported rows taken without
    verification have no tests to run: they are left out of the sample, and counted."""
    df = stored_table(asset, check)
    unverified = unverified_imports(df)
    df = df.filter(~unverified)
    columns = [id_column, "solution", "tests", *(["language"] if "language" in df.columns else [])]
    sample = sample_rows(df, check.sample, check.partition).select(columns).to_dicts()
    if not sample:
        return Outcome(True, metadata={"rerun": 0, "unverified_imports": int(unverified.sum())})
    if check.pool is None:
        raise RuntimeError("the re-run check needs a sandbox; give CheckInput a pool")
    verdicts = check.pool().run_batch([_program(str(r[id_column]), r) for r in sample])
    failing = [(r[id_column], v) for r, v in zip(sample, verdicts) if not v.passed]
    problems = [f"{id_column}={row_id}: solution with its tests: {v.status} when run again"
                + (f" ({(v.stderr or '').strip().splitlines()[-1][:160]})" if (v.stderr or "").strip() else "")
                for row_id, v in failing]
    return Outcome.from_problems(problems, rerun=len(sample), failing=[row_id for row_id, _ in failing][:20],
                                 unverified_imports=int(unverified.sum()))
