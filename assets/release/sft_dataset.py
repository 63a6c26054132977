"""sft_dataset: the decontaminated dialogues of every seed source as one versioned SFT dataset — a table in the store
and a release folder users download, train on, or publish:

    $CRUCIBLE_HOME/datasets/<name>/<version>/
        README.md                                 the dataset card (assets/release/card.py), with Magicoder's
                                                  statistics per source and method (assets/release/dataset_stats.py)
        LICENSES.md                               the seed licences: rows and sources of each
        data/train-00000-of-00001.parquet         `datasets.load_dataset("parquet", ...)` and TRL read these
        data/test-00000-of-00001.parquet
        plots/*.png
        reports/contamination_report.parquet

Three steps, in order:
- the mix (`SftConfig.mix`): a share or a row cap per generation method or seed source, sampled by a seeded hash of
  the dialogue id, so adding rows never reshuffles the order the others are taken in;
- the split: 9:1 train/test by a hash of each row's root problem — the problem it was derived from by following
  `parent_id` through the release and the problem tables (itself for a row made from a seed) — so an evolved,
  corrected or followed-up version of a test problem is in test too, and a packed row is in test when any member's
  root is. A problem's split never changes as sources are added: the held-out split AIEV-Instruct compares student
  and teacher on;
- the version: a fingerprint of the rows, their splits and the split settings.
"""

import os
import shutil
import time
import warnings
from collections import defaultdict
from pathlib import Path

import dagster as dg
import polars as pl
import pyarrow.parquet as pq
from pydantic import Field

from assets.checks import markdown_preview, not_empty_result, not_empty_spec
from assets.fingerprints import fingerprint, read_config
from assets.generate.methods import DEFAULT_METHOD
from assets.keys import (
    CONTAMINATION_REPORT_TABLE,
    DATASETS,
    DECONTAMINATED_DIALOGUES,
    DEDUPLICATED_DIALOGUES,
    DIALOGUE_REJECTS_TABLE,
    METHOD_DIALOGUES,
    METHOD_REJECTS_TABLE,
    OSS_INSTRUCT_PROBLEMS,
    SEED_SNIPPETS,
    SFT_DATASET,
    VERIFIED_DIALOGUES,
)
from assets.partitions import method_partitions_of
from assets.plots import bar_png, histograms_png, pass_rate_png, png_metadata
from assets.release.card import (
    LICENSES_FILE,
    CardStats,
    card_stats,
    licenses_markdown,
    magicoder_markdown,
    method_table,
    render_card,
)
from assets.release.dataset_stats import (
    SIMILARITY_EDGES,
    DatasetStats,
    dataset_stats,
    similarity_plot_panels,
    token_bin_labels,
    token_counter,
    token_plot_panels,
)
from assets.release.sft_mix import apply_mix, parse_mix, with_method
from assets.release.sft_split import lineage, merge_links, parent_links, row_problem, split_by_root
from assets.schemas import SFT, frame
from eval.benchmarks import load_benchmarks
from resources.embedder import Embedder
from resources.home import Home
from resources.hub import HubError, HubPublisher, validate_dataset_folder
from resources.store import ParquetIOManager, read_table, table_partitions, table_rows

SPLITS = ("train", "test")
RELEASE_CHECK = "release_loads"


class SftConfig(dg.Config):
    name: str = Field(default="crucible-code-feedback", description="Dataset name: the release folder and the Hub "
                                                                    "staging folder.")
    pretty_name: str = Field(default="Crucible: execution-verified code feedback dialogues",
                             description="Title of the dataset card.")
    test_fraction: float = Field(default=0.1, ge=0.0, lt=1.0,
                                 description="Share of root problems held out as the test split (by problem hash).")
    min_test_problems: int = Field(default=1, ge=0,
                                   description="If the hash split leaves fewer test root problems than this (small "
                                               "datasets), the roots with the lowest hashes move to test.")
    partitions: list[str] = Field(default=[], description="Seed sources to include; empty: every materialized "
                                                          "partition of decontaminated_dialogues.")
    mix: dict[str, float] = Field(default={}, description=(
        "How much of each group the release takes, after decontamination and before the split. Keys "
        "'method:<name>' (a generation method, or method:import:<preset>) or 'source:<name>' (a seed source); a "
        "value in [0, 1] keeps that share of the group's rows (rounded), a whole number > 1 keeps at most that many "
        "rows. The rows kept are those with the lowest seeded hash of their id; method entries apply first, then "
        "source entries, each to the rows still in. Empty: everything."))
    mix_seed: int = Field(default=0, description="Seed of the mix's row hash: another seed draws other rows.")


def build_sft(dialogues: pl.DataFrame, config: SftConfig, links: dict[str, set[str]] | None = None) -> pl.DataFrame:
    """The SFT table of already mixed rows: one row per dialogue, sorted by id, with split and dataset_version.
    `links`: problem lineage beyond these rows (the problem tables'), see `lineage`."""
    if not len(dialogues):
        return frame([], SFT)
    rows = sorted(with_method(dialogues).to_dicts(), key=lambda r: r["dialogue_id"])
    links = merge_links(links or {}, parent_links(dialogues))
    splits = split_by_root([row_problem(r) for r in rows], links, config.test_fraction, config.min_test_problems)
    version = fingerprint([[r["dialogue_id"], splits[row_problem(r)]] for r in rows], config.test_fraction,
                          config.min_test_problems)
    return frame([{**r, "id": r["dialogue_id"], "split": splits[row_problem(r)], "dataset_version": version}
                  for r in rows], SFT)


# --- per-method figures -------------------------------------------------------------------------------------------

def method_partitions(asset: str, partitions: list[str], home: Home) -> list[tuple[str, str]]:
    """(partition, method) of the written "<method>|<source>" partitions of `asset` whose source is in
    `partitions`."""
    written = [p for p in table_partitions(asset, home) if "|" in p]
    return [(p, p.split("|", 1)[0]) for source in partitions for p in method_partitions_of(source, written)]


def generation_counts(partitions: list[str], home: Home) -> dict[str, dict[str, int]]:
    """method -> rows kept and rejected at generation over the release's source partitions (Parquet footers only;
    a missing table or partition counts zero)."""
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {"kept": 0, "rejected": 0})
    for asset, kind in ((VERIFIED_DIALOGUES, "kept"), (DIALOGUE_REJECTS_TABLE, "rejected")):
        counts[DEFAULT_METHOD][kind] += table_rows(asset, [p for p in partitions
                                                           if p in table_partitions(asset, home)], home) or 0
    for asset, kind in ((METHOD_DIALOGUES, "kept"), (METHOD_REJECTS_TABLE, "rejected")):
        for partition, method in method_partitions(asset, partitions, home):
            counts[method][kind] += table_rows(asset, [partition], home) or 0
    return {m: c for m, c in sorted(counts.items()) if c["kept"] or c["rejected"]}


def release_dir(name: str, version: str, home: Home) -> Path:
    return home.datasets / name / version


def release_folder(instance: dg.DagsterInstance, version: str, home: Home) -> Path:
    """The release folder of `version`: the one sft_dataset's latest materialization wrote (its `release`
    metadata, which follows a renamed dataset), else the default name's."""
    event = instance.get_latest_materialization_event(dg.AssetKey(SFT_DATASET))
    entry = event.asset_materialization.metadata.get("release") if event and event.asset_materialization else None
    if entry is not None and Path(entry.path).name == version:
        return Path(entry.path)
    return release_dir(SftConfig().name, version, home)


def write_parquet(df: pl.DataFrame, path: Path) -> None:
    """Plain Arrow types (string, list) rather than polars' large ones, which every Parquet reader and the Hub
    viewer handle."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(df.to_arrow(compat_level=pl.CompatLevel.oldest()), path, compression="zstd")


def curation_funnel(partitions: list[str], sft_rows: int, home: Home) -> dict[str, int]:
    def counted(stages: list[tuple[str, str]]) -> dict[str, int]:
        return {label: n for asset, label in stages if (n := table_rows(asset, partitions, home)) is not None}

    generated = counted([(SEED_SNIPPETS, "seed snippets"),
                         (OSS_INSTRUCT_PROBLEMS, "problems (reference passes its tests)"),
                         (VERIFIED_DIALOGUES, "verified dialogues")])
    # The other methods' verified rows join the function_instruct ones at dedup.
    others = [p for p, _ in method_partitions(METHOD_DIALOGUES, partitions, home)]
    if others:
        generated["verified dialogues of other methods"] = table_rows(METHOD_DIALOGUES, others, home) or 0
    curated = counted([(DEDUPLICATED_DIALOGUES, "after dedup"), (DECONTAMINATED_DIALOGUES, "after decontamination")])
    return {**generated, **curated, "in this dataset": sft_rows}


def attempted_dialogues(partitions: list[str], home: Home) -> pl.DataFrame:
    """Every dialogue generation tried in these partitions (verified and rejected), for the pass rate by turn."""
    frames = [read_table(asset, [p for p in partitions if p in table_partitions(asset, home)],
                         columns=["turns", "passed_turn"], home=home)
              for asset in (VERIFIED_DIALOGUES, DIALOGUE_REJECTS_TABLE)]
    frames = [f for f in frames if len(f)]
    return pl.concat(frames) if frames else pl.DataFrame(schema={"turns": pl.Int32, "passed_turn": pl.Int32})


def release_stats(table: pl.DataFrame, partitions: list[str], embedder: Embedder, home: Home) -> DatasetStats:
    """Magicoder's statistics of the release (`table`) per source and method; "before decontamination" is
    deduplicated_dialogues of the same partitions. The embedder loads only when there is a row to embed, its
    tokenizer only when the release has rows."""
    before = with_method(read_table(DEDUPLICATED_DIALOGUES,
                                    [p for p in partitions if p in table_partitions(DEDUPLICATED_DIALOGUES, home)],
                                    columns=["instruction", "source", "method"], home=home))
    count, tokenizer = token_counter(embedder.get()) if len(table) else (lambda texts: [], "(no rows)")
    return dataset_stats(table, before, load_benchmarks(offline=("humaneval",)), embedder.encode, count, tokenizer)


def stats_pngs(stats: DatasetStats, name: str) -> dict[str, bytes]:
    """The token-length and HumanEval-similarity histograms (Magicoder's figures)."""
    return {
        "token_lengths": histograms_png(token_plot_panels(stats), f"{name}: tokens per instruction and solution",
                                        "tokens", "% of the group's rows", labels=token_bin_labels()),
        "humaneval_similarity": histograms_png(similarity_plot_panels(stats),
                                               f"{name}: highest similarity to HumanEval, before and after "
                                               "decontamination", "cosine similarity (embedding)",
                                               edges=list(SIMILARITY_EDGES)),
    }


def stats_metadata(stats: DatasetStats) -> dict:
    """Magicoder's statistics as asset metadata: JSON per view, and the card's tables."""
    return {**{key: dg.MetadataValue.json(value) for key, value in stats.as_json().items()},
            "statistics_magicoder": dg.MetadataValue.md(magicoder_markdown(stats))}


def write_release(table: pl.DataFrame, folder: Path, name: str, pretty_name: str, partitions: list[str],
                  repo_id: str | None, home: Home, mix: dict | None = None,
                  magicoder: DatasetStats | None = None) -> tuple[dict, CardStats]:
    """Write the release folder (atomically: built beside it, then renamed); return plot metadata and the card's
    figures. `mix`: the seed and the mix's groups, for the card; `magicoder`: Magicoder's statistics (a card
    section and two plots)."""
    tmp = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for split in SPLITS:
        rows = table.filter(pl.col("split") == split)
        if len(rows):  # an empty split gets no file (and no entry in the card): it could not be loaded
            write_parquet(rows, tmp / "data" / f"{split}-00000-of-00001.parquet")
    report = read_table(CONTAMINATION_REPORT_TABLE, [p for p in partitions
                                                     if p in table_partitions(CONTAMINATION_REPORT_TABLE, home)],
                        home=home)
    write_parquet(report, tmp / "reports" / "contamination_report.parquet")
    attempted = attempted_dialogues(partitions, home)
    configs = {fp: read_config(fp, home) for fp in set(table["config_fingerprint"].drop_nulls().to_list())}
    stats = card_stats(table, report, attempted, curation_funnel(partitions, len(table), home), configs,
                       generation_counts(partitions, home), mix, magicoder)
    plots = {"pass_rate": "plots/pass_rate_by_turn.png", "turns": "plots/turns.png"}
    pngs = {"pass_rate": pass_rate_png(stats.pass_rate_by_turn, f"{name}: pass rate by turn"),
            "turns": bar_png(stats.turns, f"{name}: assistant turns per dialogue", "assistant turns")}
    if magicoder is not None:
        pngs.update(stats_pngs(magicoder, name))
        plots.update({key: f"plots/{key}.png" for key in ("token_lengths", "humaneval_similarity")})
    (tmp / "README.md").write_text(render_card(stats, pretty_name, plots, repo_id))
    (tmp / LICENSES_FILE).write_text(licenses_markdown(stats))
    for key, png in pngs.items():
        (tmp / plots[key]).parent.mkdir(parents=True, exist_ok=True)
        (tmp / plots[key]).write_bytes(png)
    if folder.exists():
        shutil.rmtree(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, folder)
    return {f"plot_{key}": png_metadata(png, home.reports / SFT_DATASET / f"{key}.png", key)
            for key, png in pngs.items()}, stats


@dg.asset(
    deps=[DECONTAMINATED_DIALOGUES, CONTAMINATION_REPORT_TABLE],
    group_name=DATASETS,
    check_specs=[
        not_empty_spec(SFT_DATASET, "The dataset has rows."),
        dg.AssetCheckSpec(RELEASE_CHECK, asset=SFT_DATASET,
                          description="The release folder's card parses as a Hub dataset card and `datasets` "
                                      "loads its splits with the table's row counts."),
    ],
)
def sft_dataset(context: dg.AssetExecutionContext, config: SftConfig, hub: HubPublisher, embedder: Embedder,
                io_manager: dg.ResourceParam[ParquetIOManager]):
    """The SFT dataset over every seed source: a seeded mix per method and source, train/test by root problem
    hash, messages in chat format, provenance, a release folder with the dataset card."""
    home = io_manager.paths
    parse_mix(config.mix)  # a bad key fails before anything is read
    partitions = config.partitions or table_partitions(DECONTAMINATED_DIALOGUES, home)
    dialogues = with_method(read_table(DECONTAMINATED_DIALOGUES, partitions, home=home))
    mixed, groups = apply_mix(dialogues, config.mix, config.mix_seed)
    links = lineage(home)
    table = build_sft(mixed, config, links)
    version = table["dataset_version"][0] if len(table) else "empty"
    folder = release_dir(config.name, version, home)
    mix = {"requested": config.mix, "seed": config.mix_seed, "groups": groups}
    started = time.monotonic()
    magicoder = release_stats(table, partitions, embedder, home)
    context.log.info(f"Magicoder's statistics in {time.monotonic() - started:.1f} s")
    plots, stats = write_release(table, folder, config.name, config.pretty_name, partitions, hub.dataset_repo, home,
                                 mix, magicoder)
    counts = {s: int((table["split"] == s).sum()) for s in SPLITS}
    context.log.info(f"{len(table)} rows from {len(partitions)} partition(s) ({counts}); release {folder}")
    with warnings.catch_warnings():  # data_version is a beta parameter; its warning would fill every run's log
        warnings.simplefilter("ignore", dg.BetaWarning)
        output = dg.Output(table, data_version=dg.DataVersion(version), metadata={
        "rows": len(table), **{f"rows_{s}": n for s, n in counts.items()}, "dataset_version": version,
        "partitions": dg.MetadataValue.json(partitions), "release": dg.MetadataValue.path(str(folder)),
        "card": dg.MetadataValue.path(str(folder / "README.md")),
        "preview": markdown_preview(table, ["id", "split", "method", "source", "turns", "passed_turn",
                                            "instruction"]),
        "methods": dg.MetadataValue.md(method_table(stats.methods) if stats.methods else "(no rows)"),
        "method_rows": dg.MetadataValue.json({m["method"]: {k: m[k] for k in ("rows", "kept", "rejected",
                                                                             "pass_rate")}
                                              for m in stats.methods}),
        "mix": dg.MetadataValue.json(mix),
        **stats_metadata(magicoder),
        **plots,
    })
    yield output
    yield not_empty_result(SFT_DATASET, table, severity=dg.AssetCheckSeverity.WARN)
    yield release_check(folder, counts)


def release_check(folder: Path, counts: dict[str, int]) -> dg.AssetCheckResult:
    expected = {split: n for split, n in counts.items() if n}
    loaded, problem = {}, ""
    if expected:  # an empty dataset has no splits to load (not_empty warns about it)
        try:
            loaded = validate_dataset_folder(folder).splits
            problem = "" if loaded == expected else f"datasets loads {loaded}, the table has {expected}"
        except HubError as err:
            problem = str(err)
    return dg.AssetCheckResult(check_name=RELEASE_CHECK, asset_key=SFT_DATASET, passed=not problem,
                               severity=dg.AssetCheckSeverity.ERROR,
                               metadata={"loaded": dg.MetadataValue.json(loaded), "problem": problem})
