"""sft_dataset: the decontaminated dialogues of every seed source as one versioned SFT dataset — a table in the store
and a release folder users download, train on, or publish:

    $CRUCIBLE_HOME/datasets/<name>/<version>/
        README.md                                 the dataset card (assets/release/card.py)
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

import hashlib
import math
import os
import shutil
import warnings
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import polars as pl
import pyarrow.parquet as pq
from pydantic import Field

from assets.checks import markdown_preview, not_empty_result, not_empty_spec
from assets.fingerprints import fingerprint, read_config
from assets.generate.methods import DEFAULT_METHOD, METHODS
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
from assets.plots import bar_png, pass_rate_png, png_metadata
from assets.release.card import CardStats, card_stats, method_table, render_card
from assets.schemas import SFT, frame
from resources.home import Home
from resources.hub import HubError, HubPublisher, validate_dataset_folder
from resources.store import ParquetIOManager, read_table, table_partitions, table_path, table_rows

IMPORT_METHOD_PREFIX = "import:"  # imported rows: method "import:<preset>"

SPLITS = ("train", "test")
DISJOINT_CHECK = "splits_disjoint_by_problem"
RELEASE_CHECK = "release_loads"
MIX_COLUMNS = ("method", "source")  # the order mix entries apply in
MIX_HELP = ("write {'method:<name>' or 'source:<name>': a share in [0, 1] or a row cap (a whole number > 1)}, "
            "e.g. {'method:evol_instruct': 0.5, 'source:stdlib': 1000}")


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


def problem_hash(problem_id: str) -> float:
    """A stable number in [0, 1) for a problem."""
    return int(hashlib.sha256(f"split:{problem_id}".encode()).hexdigest()[:13], 16) / 16 ** 13


def split_problems(problem_ids: list[str], test_fraction: float, min_test_problems: int) -> dict[str, str]:
    """problem_id -> train | test. Deterministic: a problem's split depends only on its id and the settings (and,
    through min_test_problems, on the lowest hashes present)."""
    ranked = sorted(set(problem_ids), key=problem_hash)
    test = {p for p in ranked if problem_hash(p) < test_fraction}
    # Keep at least one train problem: a dataset of two problems still trains on one.
    for p in ranked[: max(0, min(min_test_problems, len(ranked) - 1))]:
        test.add(p)
    return {p: "test" if p in test else "train" for p in ranked}


# --- the mix ------------------------------------------------------------------------------------------------------

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


# --- the split by root problem ------------------------------------------------------------------------------------

def parent_ids(parent_id: str | None) -> set[str]:
    """The problems a row names as parents (a packed row names several, joined with ",")."""
    return {p.strip() for p in (parent_id or "").split(",") if p.strip()}


def parent_links(*tables: pl.DataFrame) -> dict[str, set[str]]:
    """problem_id -> its parents' problem_ids, over tables with problem_id and parent_id columns."""
    links: dict[str, set[str]] = defaultdict(set)
    for table in tables:
        if not len(table) or "problem_id" not in table.columns or "parent_id" not in table.columns:
            continue
        for problem, parent in table.select("problem_id", "parent_id").unique().iter_rows():
            if problem is not None:
                links[problem] |= parent_ids(parent) - {problem}
    return dict(links)


def merge_links(*many: dict[str, set[str]]) -> dict[str, set[str]]:
    merged: dict[str, set[str]] = defaultdict(set)
    for links in many:
        for problem, parents in links.items():
            merged[problem] |= parents
    return dict(merged)


def root_problems(problem_id: str, links: dict[str, set[str]]) -> frozenset[str]:
    """The ancestors of `problem_id` that have no parent of their own (the problem itself when it has none, a parent
    not in `links` when it is unknown)."""
    seen, stack, roots = {problem_id}, [problem_id], set()
    while stack:
        problem = stack.pop()
        parents = links.get(problem, set())
        if not parents:
            roots.add(problem)
        for parent in parents - seen:
            seen.add(parent)
            stack.append(parent)
    return frozenset(roots or {min(seen)})  # a parent cycle with no way out: one fixed member stands for it


def row_problem(row: dict) -> str:
    """A row's problem: its problem_id (the dialogue id for a row that has none)."""
    return row.get("problem_id") or row["dialogue_id"]


def split_by_root(problems: list[str], links: dict[str, set[str]], test_fraction: float,
                  min_test_problems: int) -> dict[str, str]:
    """problem -> train | test. Roots are split by their hash (split_problems); a problem is in test when any of its
    roots is."""
    roots = {p: root_problems(p, links) for p in set(problems)}
    root_split = split_problems([r for rs in roots.values() for r in rs], test_fraction, min_test_problems)
    return {p: "test" if any(root_split[r] == "test" for r in rs) else "train" for p, rs in roots.items()}


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


def lineage_columns(asset: str, home: Home) -> list[pl.DataFrame]:
    """problem_id and parent_id of every partition of `asset` that has both (older ones may lack parent_id)."""
    frames = []
    for partition in table_partitions(asset, home):
        path = table_path(asset, partition, home)
        if {"problem_id", "parent_id"} <= set(pq.read_schema(path).names):
            frames.append(pl.read_parquet(path, columns=["problem_id", "parent_id"]))
    return frames


def lineage(home: Home) -> dict[str, set[str]]:
    """problem_id -> parents, from the problem tables: the verified problems and the method rows of every
    partition (a parent may come from another source's or another round's partition)."""
    return parent_links(*lineage_columns(OSS_INSTRUCT_PROBLEMS, home), *lineage_columns(METHOD_DIALOGUES, home))


def root_leaks(table: pl.DataFrame, links: dict[str, set[str]]) -> list[str]:
    """Roots with rows in both splits, from the table's split column. A test row with several roots (a packed row)
    is left out: it goes to test when any member is a test root, so its other members may be train roots."""
    links = merge_links(links, parent_links(table))
    splits_of: dict[str, set[str]] = defaultdict(set)
    for problem, split in table.select(pl.coalesce("problem_id", "id"), "split").unique().iter_rows():
        roots = root_problems(problem, links)
        if split == "train" or len(roots) == 1:
            for root in roots:
                splits_of[root].add(split)
    return sorted(r for r, s in splits_of.items() if len(s) > 1)


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


def write_release(table: pl.DataFrame, folder: Path, name: str, pretty_name: str, partitions: list[str],
                  repo_id: str | None, home: Home, mix: dict | None = None) -> tuple[dict, CardStats]:
    """Write the release folder (atomically: built beside it, then renamed); return plot metadata and the card's
    figures. `mix`: the seed and the mix's groups, for the card."""
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
                       generation_counts(partitions, home), mix)
    plots = {"pass_rate": "plots/pass_rate_by_turn.png", "turns": "plots/turns.png"}
    pngs = {"pass_rate": pass_rate_png(stats.pass_rate_by_turn, f"{name}: pass rate by turn"),
            "turns": bar_png(stats.turns, f"{name}: assistant turns per dialogue", "assistant turns")}
    (tmp / "README.md").write_text(render_card(stats, pretty_name, plots, repo_id))
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
        dg.AssetCheckSpec(DISJOINT_CHECK, asset=SFT_DATASET,
                          description="No problem has dialogues in both train and test, and no root problem either "
                                      "(a packed test row may hold a train root beside its test one)."),
        dg.AssetCheckSpec(RELEASE_CHECK, asset=SFT_DATASET,
                          description="The release folder's card parses as a Hub dataset card and `datasets` "
                                      "loads its splits with the table's row counts."),
    ],
)
def sft_dataset(context: dg.AssetExecutionContext, config: SftConfig, hub: HubPublisher,
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
    plots, stats = write_release(table, folder, config.name, config.pretty_name, partitions, hub.dataset_repo, home,
                                 mix)
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
        **plots,
    })
    yield output
    yield not_empty_result(SFT_DATASET, table, severity=dg.AssetCheckSeverity.WARN)
    yield disjoint_check(table, links)
    yield release_check(folder, counts)


def disjoint_check(table: pl.DataFrame, links: dict[str, set[str]]) -> dg.AssetCheckResult:
    """From the table's split column: no problem in both splits, and no root problem (root_leaks)."""
    both = table.group_by("problem_id").agg(pl.col("split").n_unique().alias("n")).filter(pl.col("n") > 1)
    roots = root_leaks(table, links) if len(table) else []
    return dg.AssetCheckResult(check_name=DISJOINT_CHECK, asset_key=SFT_DATASET, passed=not len(both) and not roots,
                               severity=dg.AssetCheckSeverity.ERROR,
                               metadata={"problems_in_both": dg.MetadataValue.json(both["problem_id"].to_list()[:20]),
                                         "roots_in_both": dg.MetadataValue.json(roots[:20])})


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
