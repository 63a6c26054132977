"""sft_dataset: the decontaminated dialogues of every seed source as one versioned SFT dataset — a table in the store
and a release folder users download, train on, or publish:

    $CRUCIBLE_HOME/datasets/<name>/<version>/
        README.md                                 the dataset card (assets/release/card.py)
        data/train-00000-of-00001.parquet         `datasets.load_dataset("parquet", ...)` and TRL read these
        data/test-00000-of-00001.parquet
        plots/*.png
        reports/contamination_report.parquet

The 9:1 train/test split is by a hash of the problem id, so it never changes for a problem and every dialogue of a
problem lands in the same split: the held-out test split AIEV-Instruct compares student and teacher on. The version
is a fingerprint of the rows and the split settings.
"""

import hashlib
import os
import shutil
import warnings
from pathlib import Path

import dagster as dg
import polars as pl
import pyarrow.parquet as pq
from pydantic import Field

from assets.checks import markdown_preview, not_empty_result, not_empty_spec
from assets.fingerprints import fingerprint, read_config
from assets.keys import (
    CONTAMINATION_REPORT_TABLE,
    DATASETS,
    DECONTAMINATED_DIALOGUES,
    DEDUPLICATED_DIALOGUES,
    DIALOGUE_REJECTS_TABLE,
    OSS_INSTRUCT_PROBLEMS,
    SEED_SNIPPETS,
    SFT_DATASET,
    VERIFIED_DIALOGUES,
)
from assets.plots import bar_png, pass_rate_png, png_metadata
from assets.release.card import card_stats, render_card
from assets.schemas import SFT, frame
from resources.home import Home
from resources.hub import HubError, HubPublisher, validate_dataset_folder
from resources.store import ParquetIOManager, read_table, table_partitions, table_rows

SPLITS = ("train", "test")
DISJOINT_CHECK = "splits_disjoint_by_problem"
RELEASE_CHECK = "release_loads"


class SftConfig(dg.Config):
    name: str = Field(default="crucible-code-feedback", description="Dataset name: the release folder and the Hub "
                                                                    "staging folder.")
    pretty_name: str = Field(default="Crucible: execution-verified code feedback dialogues",
                             description="Title of the dataset card.")
    test_fraction: float = Field(default=0.1, ge=0.0, lt=1.0,
                                 description="Share of problems held out as the test split (by problem hash).")
    min_test_problems: int = Field(default=1, ge=0,
                                   description="If the hash split leaves fewer test problems than this (small "
                                               "datasets), the problems with the lowest hashes move to test.")
    partitions: list[str] = Field(default=[], description="Seed sources to include; empty: every materialized "
                                                          "partition of decontaminated_dialogues.")


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


def build_sft(dialogues: pl.DataFrame, config: SftConfig) -> pl.DataFrame:
    """The SFT table: one row per dialogue, sorted by id, with split and dataset_version."""
    if not len(dialogues):
        return frame([], SFT)
    splits = split_problems(dialogues["problem_id"].to_list(), config.test_fraction, config.min_test_problems)
    rows = sorted(dialogues.to_dicts(), key=lambda r: r["dialogue_id"])
    version = fingerprint([r["dialogue_id"] for r in rows], config.test_fraction, config.min_test_problems)
    return frame([{**r, "id": r["dialogue_id"], "split": splits[r["problem_id"]], "dataset_version": version}
                  for r in rows], SFT)


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
    stages = [(SEED_SNIPPETS, "seed snippets"), (OSS_INSTRUCT_PROBLEMS, "problems (reference passes its tests)"),
              (VERIFIED_DIALOGUES, "verified dialogues"), (DEDUPLICATED_DIALOGUES, "after dedup"),
              (DECONTAMINATED_DIALOGUES, "after decontamination")]
    funnel = {label: n for asset, label in stages if (n := table_rows(asset, partitions, home)) is not None}
    return {**funnel, "in this dataset": sft_rows}


def attempted_dialogues(partitions: list[str], home: Home) -> pl.DataFrame:
    """Every dialogue generation tried in these partitions (verified and rejected), for the pass rate by turn."""
    frames = [read_table(asset, [p for p in partitions if p in table_partitions(asset, home)],
                         columns=["turns", "passed_turn"], home=home)
              for asset in (VERIFIED_DIALOGUES, DIALOGUE_REJECTS_TABLE)]
    frames = [f for f in frames if len(f)]
    return pl.concat(frames) if frames else pl.DataFrame(schema={"turns": pl.Int32, "passed_turn": pl.Int32})


def write_release(table: pl.DataFrame, folder: Path, name: str, pretty_name: str, partitions: list[str],
                  repo_id: str | None, home: Home) -> dict:
    """Write the release folder (atomically: built beside it, then renamed) and return plot metadata."""
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
    stats = card_stats(table, report, attempted, curation_funnel(partitions, len(table), home), configs)
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
            for key, png in pngs.items()}


@dg.asset(
    deps=[DECONTAMINATED_DIALOGUES, CONTAMINATION_REPORT_TABLE],
    group_name=DATASETS,
    check_specs=[
        not_empty_spec(SFT_DATASET, "The dataset has rows."),
        dg.AssetCheckSpec(DISJOINT_CHECK, asset=SFT_DATASET,
                          description="No problem has dialogues in both train and test."),
        dg.AssetCheckSpec(RELEASE_CHECK, asset=SFT_DATASET,
                          description="The release folder's card parses as a Hub dataset card and `datasets` "
                                      "loads its splits with the table's row counts."),
    ],
)
def sft_dataset(context: dg.AssetExecutionContext, config: SftConfig, hub: HubPublisher,
                io_manager: dg.ResourceParam[ParquetIOManager]):
    """The SFT dataset over every seed source: train/test by problem hash, messages in chat format, provenance,
    a release folder with the dataset card."""
    home = io_manager.paths
    partitions = config.partitions or table_partitions(DECONTAMINATED_DIALOGUES, home)
    dialogues = read_table(DECONTAMINATED_DIALOGUES, partitions, home=home)
    table = build_sft(dialogues, config)
    version = table["dataset_version"][0] if len(table) else "empty"
    folder = release_dir(config.name, version, home)
    plots = write_release(table, folder, config.name, config.pretty_name, partitions, hub.dataset_repo, home)
    counts = {s: int((table["split"] == s).sum()) for s in SPLITS}
    context.log.info(f"{len(table)} rows from {len(partitions)} partition(s) ({counts}); release {folder}")
    with warnings.catch_warnings():  # data_version is a beta parameter; its warning would fill every run's log
        warnings.simplefilter("ignore", dg.BetaWarning)
        output = dg.Output(table, data_version=dg.DataVersion(version), metadata={
        "rows": len(table), **{f"rows_{s}": n for s, n in counts.items()}, "dataset_version": version,
        "partitions": dg.MetadataValue.json(partitions), "release": dg.MetadataValue.path(str(folder)),
        "card": dg.MetadataValue.path(str(folder / "README.md")),
        "preview": markdown_preview(table, ["id", "split", "source", "turns", "passed_turn", "instruction"]),
        **plots,
    })
    yield output
    yield not_empty_result(SFT_DATASET, table, severity=dg.AssetCheckSeverity.WARN)
    both = table.group_by("problem_id").agg(pl.col("split").n_unique().alias("n")).filter(pl.col("n") > 1)
    yield dg.AssetCheckResult(check_name=DISJOINT_CHECK, asset_key=SFT_DATASET, passed=len(both) == 0,
                              severity=dg.AssetCheckSeverity.ERROR,
                              metadata={"problems_in_both": dg.MetadataValue.json(both["problem_id"].to_list()[:20])})
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
