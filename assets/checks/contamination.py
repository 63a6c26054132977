"""Zero contamination by an independent route: the stored table (not the frame decontamination held in memory) is
searched for benchmark text again — an exact layer the curation stage does not have (a benchmark problem's
description or canonical solution, normalised, inside a row) and the n-gram layer — and no row the stored
contamination report names may be in it. Embeddings and execution are left to the curation stage: this check must
stay cheap enough to run on every table a user may have edited."""

from __future__ import annotations

from functools import lru_cache

import polars as pl

from assets.checks.stored import CheckInput, Outcome, stored_table
from assets.curate.decontam_layers import NGRAM, BenchmarkIndex, DecontamSettings, row_text
from assets.curate.dedup_layers import normalize
from assets.keys import CONTAMINATION_REPORT_TABLE
from eval.benchmarks import BenchmarkItem, load_benchmarks
from resources.store import UNPARTITIONED, table_path

# A normalised description or solution shorter than this is too generic to prove a copy ("return a + b").
MIN_EXACT_CHARS = 60


@lru_cache(maxsize=1)
def _benchmarks() -> tuple[list[BenchmarkItem], BenchmarkIndex, list[tuple[str, int]]]:
    items = load_benchmarks()
    index = BenchmarkIndex(items, None, DecontamSettings.ngram_size, DecontamSettings.ngram_max_df,
                           DecontamSettings.ngram_min)
    needles = [(normalize(text), i) for i, item in enumerate(items) for text in (item.description, item.solution)
               if len(normalize(text)) >= MIN_EXACT_CHARS]
    return items, index, needles


def benchmark_text_in(rows: list[dict], id_column: str) -> list[str]:
    """One problem per row that holds benchmark text: exact (normalised substring) or n-gram overlap at the curation
    stage's threshold."""
    items, index, needles = _benchmarks()
    threshold = DecontamSettings.ngram_threshold
    problems = []
    for row in rows:
        text = row_text(row.get("instruction"), row.get("solution"))
        normalized = normalize(text)
        exact = next((i for needle, i in needles if needle in normalized), None)
        if exact is not None:
            problems.append(f"{id_column}={row[id_column]}: holds the text of {items[exact].task_id} (exact)")
            continue
        score, i, field = index.ngram_best(text)
        if i >= 0 and score >= threshold:
            problems.append(f"{id_column}={row[id_column]}: {score:.0%} of {items[i].task_id}'s {field} n-grams "
                            f"({NGRAM})")
    return problems


def reported_ids(check: CheckInput) -> set[str]:
    """The dialogue ids the stored contamination report removed from this partition."""
    path = table_path(CONTAMINATION_REPORT_TABLE, check.partition or UNPARTITIONED, check.home)
    if not path.is_file():
        return set()
    return set(pl.read_parquet(path, columns=["dialogue_id"])["dialogue_id"].to_list())


def no_benchmark_text(asset: str, id_column: str, check: CheckInput, with_report: bool) -> Outcome:
    """The check on `asset`'s stored partition; `with_report`: also no id of the partition's contamination report."""
    df = stored_table(asset, check)
    rows = df.select(id_column, "instruction", "solution").to_dicts()
    problems = []
    if with_report:
        leaked = sorted(set(df[id_column].to_list()) & reported_ids(check))
        problems += [f"{id_column}={i}: removed by decontamination (contamination_report) but present" for i in leaked]
    problems += benchmark_text_in(rows, id_column)
    return Outcome.from_problems(problems, rows_checked=len(rows))
