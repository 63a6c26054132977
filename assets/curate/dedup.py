"""deduplicated_dialogues: verified dialogues without duplicate problems, within the partition and against the
partitions already deduplicated; the duplicates go to dedup_rejects with the id of the row they duplicate.

Problems are compared by their instruction (two dialogues that answer the same problem are duplicates whatever
their code): exact after normalisation, then MinHash LSH over word 5-grams, then embedding cosine
(assets/curate/dedup_layers.py).
"""

import time
from collections import Counter

import dagster as dg
import polars as pl
from pydantic import Field

from assets.checks import markdown_preview, reason_metadata, stage_outs
from assets.curate.dedup_layers import REASONS, DedupSettings, find_duplicates, normalize
from assets.keys import CURATE, DEDUP_REJECTS_TABLE, DEDUPLICATED_DIALOGUES, VERIFIED_DIALOGUES
from assets.partitions import seed_source_partitions
from assets.schemas import DEDUP_REJECTS, DIALOGUES, frame
from resources.embedder import Embedder
from resources.store import ParquetIOManager, read_table

NO_DUPLICATES_CHECK = "no_exact_duplicates"


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


@dg.multi_asset(
    outs=stage_outs(CURATE, {
        DEDUPLICATED_DIALOGUES: "Verified dialogues with duplicate problems removed (exact, MinHash LSH, embedding), "
                                "within the partition and against earlier ones.",
        DEDUP_REJECTS_TABLE: "The dialogues dedup removed, with the reason, the id of the kept row they duplicate and "
                             "the similarity.",
    }),
    ins={"dialogues": dg.AssetIn(VERIFIED_DIALOGUES)},
    partitions_def=seed_source_partitions,
    check_specs=[
        dg.AssetCheckSpec(NO_DUPLICATES_CHECK, asset=DEDUPLICATED_DIALOGUES,
                          description="No two kept rows (in this partition or against earlier ones) have the same "
                                      "normalised instruction."),
    ],
)
def deduplicated_dialogues(context: dg.AssetExecutionContext, config: DedupConfig, dialogues,
                           embedder: Embedder, io_manager: dg.ResourceParam[ParquetIOManager]):
    """Verified dialogues of one seed source without duplicate problems."""
    started = time.monotonic()
    # Earlier partitions only matter through their ids and instructions: read just those columns.
    earlier = read_table(DEDUPLICATED_DIALOGUES, exclude=[context.partition_key],
                         columns=["dialogue_id", "instruction"], home=io_manager.paths)
    kept, reject_rows, counts = dedup_table(dialogues, earlier, embedder.encode, config.settings())
    kept = frame(kept.to_dicts(), DIALOGUES)
    rejects = frame(reject_rows, DEDUP_REJECTS)
    yield dg.Output(kept, output_name=DEDUPLICATED_DIALOGUES, metadata={
        "rows_in": len(dialogues), "rows_kept": len(kept), "earlier_rows_compared": len(earlier),
        "seconds": round(time.monotonic() - started, 1), **reason_metadata(counts),
        "preview": markdown_preview(rejects, ["dialogue_id", "reason", "duplicate_of", "similarity", "instruction"]),
    })
    yield dg.Output(rejects, output_name=DEDUP_REJECTS_TABLE, metadata=reason_metadata(counts))
    keys = [normalize(t) for t in kept["instruction"].to_list()]
    earlier_keys = {normalize(t) for t in earlier["instruction"].to_list()} if len(earlier) else set()
    repeated = len(keys) - len(set(keys)) + sum(1 for k in set(keys) if k in earlier_keys)
    yield dg.AssetCheckResult(check_name=NO_DUPLICATES_CHECK, asset_key=DEDUPLICATED_DIALOGUES,
                              passed=repeated == 0, severity=dg.AssetCheckSeverity.ERROR,
                              metadata={"repeated_instructions": repeated})
