"""deduplicated_dialogues: verified dialogues without duplicate problems, within the partition and against the
partitions already deduplicated; the duplicates go to dedup_rejects with the id of the row they duplicate.

The partition's dialogues are those of every generation method: verified_dialogues (function_instruct) and each
method's method_dialogues partition of the source, and for an import source its imported_dialogues. Duplicates are
looked for among rows of the same method: a code correction or a follow-up of a problem restates that problem on
purpose, and is not a duplicate of it. Imported rows are the exception both ways: an imported row is compared with
the rows of every method, and a generated row with the imported ones too.

Problems are compared by their instruction (two dialogues that answer the same problem are duplicates whatever
their code): exact after normalisation, then MinHash LSH over word 5-grams, then embedding cosine
(assets/curate/dedup_layers.py).
"""

import time
from collections import Counter

import dagster as dg
import polars as pl
from pydantic import Field

from assets.checks import markdown_preview, reason_metadata, stage_outs, table_output
from assets.curate.dedup_layers import REASONS, DedupSettings, find_duplicates
from assets.generate.methods import DEFAULT_METHOD
from assets.keys import (
    CURATE,
    DEDUP_REJECTS_TABLE,
    DEDUPLICATED_DIALOGUES,
    IMPORTED_DIALOGUES,
    METHOD_DIALOGUES,
    VERIFIED_DIALOGUES,
)
from assets.partitions import BY_SOURCE, method_partitions_of, seed_source_partitions
from assets.schemas import DEDUP_REJECTS, DIALOGUES, IMPORT_METHOD_PREFIX, conform, frame
from resources.embedder import Embedder
from resources.home import Home
from resources.store import ParquetIOManager, read_table, table_partitions


class DedupConfig(dg.Config):
    minhash_threshold: float = Field(default=DedupSettings.minhash_threshold,
                                     description="Estimated Jaccard similarity of word 5-gram shingles at which two "
                                                 "problems are near-duplicates.")
    embedding_threshold: float = Field(default=DedupSettings.embedding_threshold,
                                       description="Cosine similarity of the instructions' embeddings at which two "
                                                   "problems are duplicates (related but different problems reach "
                                                   "~0.9 with all-MiniLM-L6-v2, so keep it above that).")
    layers: list[str] = Field(default=list(REASONS), description="Which of exact, minhash, embedding to apply.")

    def settings(self) -> DedupSettings:
        return DedupSettings(minhash_threshold=self.minhash_threshold, embedding_threshold=self.embedding_threshold,
                             layers=tuple(self.layers))


def dedup_table(new: pl.DataFrame, earlier: pl.DataFrame, embed, settings: DedupSettings,
                id_column: str = "dialogue_id", text_column: str = "instruction"):
    """(kept rows, rejected rows with reason/duplicate_of/similarity columns, counts per reason)."""
    for name, df in (("new", new), ("earlier", earlier)):
        missing = [c for c in (id_column, text_column) if len(df.columns) and c not in df.columns]
        if missing:
            raise ValueError(f"the {name} table has no {' or '.join(missing)} column; dedup needs an id column "
                             f"({id_column}) and the problem text ({text_column})")
    earlier_ids = earlier[id_column].cast(pl.Utf8).to_list() if len(earlier) else []
    earlier_texts = earlier[text_column].to_list() if len(earlier) else []
    dups = find_duplicates(new[id_column].cast(pl.Utf8).to_list(), new[text_column].to_list(), earlier_ids,
                           earlier_texts, embed, settings)
    rejected = {d.index: d for d in dups}
    keep_mask = [i not in rejected for i in range(len(new))]
    kept = new.filter(pl.Series(keep_mask, dtype=pl.Boolean)) if len(new) else new
    rows = new.to_dicts()
    reject_rows = [{**rows[d.index], "reason": d.reason, "duplicate_of": d.duplicate_of, "similarity": d.score}
                   for d in dups]
    return kept, reject_rows, Counter(d.reason for d in dups)


EARLIER_COLUMNS = ["dialogue_id", "instruction", "method"]  # all dedup needs of the rows already kept


class NothingToDeduplicate(ValueError):
    """A partition with no dialogues of any kind written yet."""


def all_methods(partition: str, home: Home) -> pl.DataFrame:
    """The source's dialogues of every method (imported ones included), in the DIALOGUES schema, method always set;
    NothingToDeduplicate when the source has none written."""
    frames = [conform(read_table(asset, [partition], home=home), DIALOGUES)
              for asset in (VERIFIED_DIALOGUES, IMPORTED_DIALOGUES) if partition in table_partitions(asset, home)]
    parts = method_partitions_of(partition, table_partitions(METHOD_DIALOGUES, home))
    if parts:
        frames.append(conform(read_table(METHOD_DIALOGUES, parts, home=home), DIALOGUES))
    if not frames:
        raise NothingToDeduplicate(f"source {partition!r} has no dialogues under {home.root}: materialize "
                                   f"{VERIFIED_DIALOGUES} (generate) or {IMPORTED_DIALOGUES} (an import) first")
    return pl.concat(frames).with_columns(pl.col("method").fill_null(DEFAULT_METHOD))


def imported(method: str) -> bool:
    return method.startswith(IMPORT_METHOD_PREFIX)


def compared_with(method: str, earlier: pl.DataFrame) -> pl.DataFrame:
    """The earlier rows a row of `method` is compared with: all of them for an imported row, else the rows of the
    same method and the imported ones."""
    if not len(earlier) or imported(method):
        return earlier
    return earlier.filter((pl.col("method") == method) | pl.col("method").str.starts_with(IMPORT_METHOD_PREFIX))


def dedup_by_method(new: pl.DataFrame, earlier: pl.DataFrame, embed, settings: DedupSettings):
    """dedup_table within each method's rows, against the earlier rows it is compared with (`compared_with`).
    Methods are taken generated first, imported last, and each method's kept rows join the earlier rows of the ones
    after it: an imported row that restates a generated problem of the same partition goes, the generated one
    stays."""
    if len(earlier):
        earlier = earlier.with_columns(pl.col("method").fill_null(DEFAULT_METHOD))
    kept_frames, reject_rows, counts = [], [], Counter()
    for method in sorted(set(new["method"].to_list()), key=lambda m: (imported(m), m)):
        mine = new.filter(pl.col("method") == method)
        theirs = compared_with(method, earlier)
        kept, rejects, found = dedup_table(mine, theirs, embed, settings)
        kept_frames.append(kept)
        earlier = pl.concat([earlier.select(EARLIER_COLUMNS), kept.select(EARLIER_COLUMNS)], how="vertical_relaxed") \
            if len(earlier) else kept.select(EARLIER_COLUMNS)
        reject_rows += rejects
        counts += found
    kept = pl.concat(kept_frames) if kept_frames else new
    return kept, reject_rows, counts


@dg.multi_asset(
    outs=stage_outs(CURATE, {
        DEDUPLICATED_DIALOGUES: "Verified dialogues with duplicate problems removed (exact, MinHash LSH, embedding), "
                                "within the partition and against earlier ones.",
        DEDUP_REJECTS_TABLE: "The dialogues dedup removed, with the reason, the id of the kept row they duplicate and "
                             "the similarity.",
    }),
    deps=[VERIFIED_DIALOGUES, IMPORTED_DIALOGUES, dg.AssetDep(METHOD_DIALOGUES, partition_mapping=BY_SOURCE)],
    partitions_def=seed_source_partitions,
)
def deduplicated_dialogues(context: dg.AssetExecutionContext, config: DedupConfig, embedder: Embedder,
                           io_manager: dg.ResourceParam[ParquetIOManager]):
    """Verified (and imported) dialogues of one seed source without duplicate problems."""
    started = time.monotonic()
    home = io_manager.paths
    dialogues = all_methods(context.partition_key, home)
    # Earlier partitions only matter through their ids, instructions and methods: read just those columns.
    earlier = read_table(DEDUPLICATED_DIALOGUES, exclude=[context.partition_key], columns=EARLIER_COLUMNS, home=home)
    kept, reject_rows, counts = dedup_by_method(dialogues, earlier, embedder.encode, config.settings())
    kept = frame(kept.to_dicts(), DIALOGUES)
    rejects = frame(reject_rows, DEDUP_REJECTS)
    yield table_output(kept, output_name=DEDUPLICATED_DIALOGUES, metadata={
        "rows_in": len(dialogues), "rows_kept": len(kept), "earlier_rows_compared": len(earlier),
        "rows_by_method": dg.MetadataValue.json(dict(kept.group_by("method").len().sort("method").iter_rows())),
        "seconds": round(time.monotonic() - started, 1), **reason_metadata(counts),
        "preview": markdown_preview(rejects, ["dialogue_id", "reason", "duplicate_of", "similarity", "instruction"]),
    })
    yield table_output(rejects, output_name=DEDUP_REJECTS_TABLE, metadata=reason_metadata(counts))
