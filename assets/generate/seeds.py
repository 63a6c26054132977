"""seed_snippets: real open-source code, one partition per source, filtered and deduplicated."""

import time

import dagster as dg
from pydantic import Field

from assets.checks import markdown_preview, not_empty_result, not_empty_spec, reason_metadata, stage_outs, table_output
from assets.generate.seed_extract import DEFAULT_LICENSES, ExtractConfig, SeedExtraction
from assets.generate.seed_pool import scan_files
from assets.generate.seed_sources import iter_files, require_source
from assets.keys import GENERATE, SEED_REJECTS_TABLE, SEED_SNIPPETS
from assets.partitions import seed_source_partitions, source_of
from assets.schemas import SEED_REJECTS, SEEDS, frame
from resources.home import Home
from resources.store import ParquetIOManager, read_table


class SeedsConfig(dg.Config):
    sources_file: str | None = Field(default=None, description="YAML registry of sources (default "
                                                               "$CRUCIBLE_HOME/sources.yaml); `stdlib` is built in.")
    mode: str = Field(default="function", description="function (documented functions, SelfCodeAlign), window "
                                                      "(random 1-15 line runs, OSS-Instruct) or both.")
    max_seeds: int | None = Field(default=500, description="Keep at most this many seeds (a deterministic sample).")
    max_files: int | None = Field(default=None, description="Read at most this many files of the source.")
    min_lines: int = Field(default=3, description="Functions shorter than this are dropped (too_short).")
    max_lines: int = Field(default=60, description="Snippets longer than this are dropped (too_long).")
    max_file_bytes: int = Field(default=1_000_000, description="Files larger than this are dropped (huge_file).")
    windows_per_file: int = Field(default=2, description="Windows drawn per file in window mode.")
    require_return: bool = Field(default=True, description="Functions must return a value.")
    include_methods: bool = Field(default=False, description="Methods as seeds too (they lean on their class, "
                                                             "which small teachers copy into unrunnable problems).")
    licenses: list[str] = Field(default=list(DEFAULT_LICENSES), description="SPDX ids allowed (license filter).")
    near_dup_threshold: float = Field(default=0.8, description="MinHash Jaccard threshold for near duplicates.")
    seed: int = Field(default=0, description="Seed for window sampling.")
    workers: int = Field(default=0, ge=0, description="Processes that parse the source's files (default 0: one per "
                                                      "core; 1: in the run's own process).")

    def extract_config(self) -> ExtractConfig:
        if self.mode not in ("function", "window", "both"):
            raise ValueError(f"seed_snippets config mode={self.mode!r}: use function, window or both")
        return ExtractConfig(mode=self.mode, min_lines=self.min_lines, max_lines=self.max_lines,
                             max_file_bytes=self.max_file_bytes, require_return=self.require_return,
                             include_methods=self.include_methods,
                             windows_per_file=self.windows_per_file, licenses=tuple(self.licenses),
                             near_dup_threshold=self.near_dup_threshold, max_seeds=self.max_seeds, seed=self.seed)


def extract_seeds(source: str, config: SeedsConfig, known_ids=(), home: Home | None = None) -> SeedExtraction:
    spec = require_source(source, config.sources_file, home)
    extraction = SeedExtraction(spec, config.extract_config())
    for scan in scan_files(iter_files(spec, config.max_files), spec, extraction.config, config.workers):
        extraction.add(scan)
    extraction.finish(known_ids)
    return extraction


@dg.multi_asset(
    outs=stage_outs(GENERATE, {
        SEED_SNIPPETS: "Code snippets from real open-source files: documented functions or random line windows, "
                       "license-filtered and deduplicated.",
        SEED_REJECTS_TABLE: "Every file or snippet the seed filters dropped, with the reason.",
    }),
    partitions_def=seed_source_partitions,
    check_specs=[not_empty_spec(SEED_SNIPPETS, "The source gave at least one seed.")],
)
def seed_snippets(context: dg.AssetExecutionContext, config: SeedsConfig,
                  io_manager: dg.ResourceParam[ParquetIOManager]):
    """Seed snippets of one source (partition): stdlib by default, any local tree or Hugging Face dataset."""
    partition = context.partition_key
    source = source_of(partition)
    started = time.monotonic()
    home = io_manager.paths
    known = read_table(SEED_SNIPPETS, exclude=[partition], columns=["seed_id"], home=home)
    known_ids = known["seed_id"].to_list() if len(known) else []
    extraction = extract_seeds(source, config, known_ids, home)
    seeds = frame(extraction.seeds, SEEDS)
    rejects = frame(extraction.rejects, SEED_REJECTS)
    context.log.info(f"{partition}: {extraction.files_seen} files read, {extraction.files_kept} parsed, "
                     f"{len(seeds)} seeds kept, {len(rejects)} dropped")
    yield table_output(seeds, output_name=SEED_SNIPPETS, metadata={
        "seeds": len(seeds), "files_seen": extraction.files_seen, "files_kept": extraction.files_kept,
        "by_kind": dg.MetadataValue.json(dict(seeds["kind"].value_counts().iter_rows()) if len(seeds) else {}),
        "by_language": dg.MetadataValue.json(dict(seeds["language"].value_counts().iter_rows()) if len(seeds) else {}),
        "seconds": round(time.monotonic() - started, 2), **reason_metadata(extraction.counts),
        "preview": markdown_preview(seeds, ["seed_id", "path", "symbol", "n_lines"]),
    })
    yield table_output(rejects, output_name=SEED_REJECTS_TABLE, metadata=reason_metadata(extraction.counts))
    yield not_empty_result(SEED_SNIPPETS, seeds)
