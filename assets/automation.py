"""Jobs, the nightly schedule, the sensor that turns new seed sources into partitions and runs, and the declarative
automation that evaluates each new checkpoint.

Default statuses (set here, shown in the UI's Automation tab, switchable there):
- `seed_source_sensor` RUNNING: a source dropped into $CRUCIBLE_HOME/inbox (a source tree as a folder, or a .parquet /
  .jsonl file of Stack-style rows) is registered in sources.yaml; every registered source that is not a partition
  yet becomes one, and a generate + curate run is requested for it. The built-in `stdlib` partition is added
  without a run (500 seeds with the offline teacher take hours; start it from the UI or `crucible generate`).
- `evaluation_automation` RUNNING: the automation-condition sensor of the evaluate group. benchmark_scores and
  teacher_selection carry AFTER_NEW_CHECKPOINT, so each new finetuned_checkpoint gets them once, with their default
  config; a checkpoint scored in the run that trained it (`crucible demo`) is not evaluated again.
- `nightly_generation` STOPPED: at 02:00 UTC a new round partition per source in CRUCIBLE_NIGHTLY_SOURCES (default
  `stdlib`), e.g. `stdlib~20261123`, which draws seeds the source's earlier partitions have not used. Off by
  default because every night spends teacher compute; turn it on in the UI.
"""

import os
import re
import time
from pathlib import Path

import dagster as dg

from assets.generate.seed_sources import SourceError, load_sources, register_source
from assets.keys import (
    CURATE,
    DATASETS,
    EVALUATE,
    FINETUNED_CHECKPOINT,
    GENERATE,
    HUB_DATASET,
    HUB_MODEL,
    IMPORT,
    METHOD_DIALOGUES,
    METHOD_REJECTS_TABLE,
    TEACHER_SELECTION,
    TRAIN,
)
from assets.partitions import (
    DEFAULT_SOURCE,
    SEED_SOURCE,
    method_source_partitions,
    round_partition,
    seed_source_partitions,
)
from resources.home import Home

INBOX_MIN_AGE_S = 10  # an inbox entry changed more recently than this may still be copying in: next tick
INBOX_DATA_FILES = {".parquet": "parquet", ".jsonl": "json", ".json": "json"}
# Licence files of dropped source trees: a few unambiguous phrases -> SPDX id. No library maps licence texts to SPDX
# offline with a small footprint; a tree whose licence is not recognised gets none and its seeds are dropped by the
# licence filter (with the reason), unless its source.yaml names one.
LICENSE_PHRASES = [
    ("Apache License", "Apache-2.0"), ("MIT License", "MIT"), ("Permission is hereby granted, free of charge", "MIT"),
    ("Redistribution and use in source and binary forms", "BSD-3-Clause"), ("Mozilla Public License", "MPL-2.0"),
    ("PYTHON SOFTWARE FOUNDATION LICENSE", "PSF-2.0"), ("This is free and unencumbered software", "Unlicense"),
    ("ISC License", "ISC"),
]

# Training and evaluation runs carry this tag, so a deployment's run queue can cap how many hold a GPU node at once
# (deploy/k8s/dagster.yaml). The teacher's limit is a concurrency pool on the steps that call it (TEACHER_POOL in
# assets/keys.py), not a run tag: a run holds a teacher slot only while such a step runs.
GPU_TAG = {"crucible/gpu": "true"}

# A run that trains a checkpoint which the same caller scores right after, in a run of its own (`crucible demo`:
# assets/runs.py run_models), carries this tag, so declarative automation does not score that checkpoint a second time.
SCORED_BY_CALLER = {"crucible/scored_by_caller": "true"}

# benchmark_scores and teacher_selection run once after each new finetuned_checkpoint: when the checkpoint was updated
# since the sensor's previous tick by a run that neither planned them too nor carries SCORED_BY_CALLER (a `train` run
# from the UI, say), and neither a parent is missing or in progress nor they themselves are running. A new sft_dataset
# alone does not re-run them. Nothing fires on the sensor's first tick, so a checkpoint from before the sensor ran is
# not evaluated; the `evaluate` job scores on demand.
AFTER_NEW_CHECKPOINT = (
    dg.AutomationCondition.any_deps_match(
        dg.AutomationCondition.newly_updated()
        & ~dg.AutomationCondition.executed_with_root_target()
        & ~dg.AutomationCondition.executed_with_tags(tag_values=SCORED_BY_CALLER)
    ).allow(dg.AssetSelection.assets(FINETUNED_CHECKPOINT)).since_last_handled()
    & ~dg.AutomationCondition.any_deps_missing()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("after a new checkpoint")

# The teacher asset acts once on each new self-learning decision (teacher_selection), the same way.
AFTER_NEW_DECISION = (
    dg.AutomationCondition.any_deps_match(
        dg.AutomationCondition.newly_updated() & ~dg.AutomationCondition.executed_with_root_target()
    ).allow(dg.AssetSelection.assets(TEACHER_SELECTION)).since_last_handled()
    & ~dg.AutomationCondition.any_deps_missing()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("after a new decision")

# method_dialogues is partitioned by (method, source): its own job.
METHOD_ASSETS = dg.AssetSelection.assets(METHOD_DIALOGUES, METHOD_REJECTS_TABLE)
generate_job = dg.define_asset_job(
    "generate", dg.AssetSelection.groups(GENERATE) - METHOD_ASSETS, partitions_def=seed_source_partitions,
    description="Seeds -> OSS-Instruct problems -> verified dialogues for one seed source.")
method_job = dg.define_asset_job(
    "generate_method", METHOD_ASSETS, partitions_def=method_source_partitions,
    description="One generation method (evol_instruct, code_correction, ...) on one seed source.")
curate_job = dg.define_asset_job(
    "curate", dg.AssetSelection.groups(CURATE), partitions_def=seed_source_partitions,
    description="Dedup and decontamination of one seed source's dialogues.")
ingest_job = dg.define_asset_job(
    "generate_and_curate", dg.AssetSelection.groups(GENERATE, CURATE) - METHOD_ASSETS,
    partitions_def=seed_source_partitions,
    description="A seed source end to end up to its decontaminated dialogues (the sensor and schedule run this).")
import_job = dg.define_asset_job(
    "import_and_curate", dg.AssetSelection.groups(IMPORT, CURATE), partitions_def=seed_source_partitions,
    description="An imported instruction dataset (an `import` source) end to end up to its decontaminated dialogues.")
dataset_job = dg.define_asset_job(
    "dataset", dg.AssetSelection.groups(DATASETS) | dg.AssetSelection.assets(HUB_DATASET),
    description="The SFT dataset over every curated source, its card, and its Hub staging or upload.")

train_job = dg.define_asset_job(
    "train", dg.AssetSelection.groups(TRAIN) | dg.AssetSelection.assets(HUB_MODEL),
    tags=GPU_TAG,
    description="Fine-tune on the SFT dataset (recipe in the run config) and stage or publish the checkpoint.")

evaluate_job = dg.define_asset_job(
    "evaluate", dg.AssetSelection.groups(EVALUATE), tags=GPU_TAG,
    description="Benchmark scores of the newest checkpoint, its base and the teacher; the student/teacher decision "
                "and the teacher of the next round.")


def source_name(path: Path) -> str:
    """A partition-safe name for an inbox entry: lowercase letters, digits, - and _."""
    stem = path.name if path.is_dir() else path.name.split(".")[0]
    return re.sub(r"[^a-z0-9_-]+", "-", stem.lower()).strip("-") or "source"


def detect_license(tree: Path) -> str | None:
    for candidate in sorted(tree.glob("*")):
        if candidate.is_file() and candidate.name.upper().startswith(("LICENSE", "LICENCE", "COPYING")):
            text = candidate.read_text(errors="replace")[:5000]
            for phrase, spdx in LICENSE_PHRASES:
                if phrase.lower() in text.lower():
                    return spdx
    return None


def inbox_entry(path: Path) -> dict | None:
    """The sources.yaml entry for an inbox folder or data file (None for anything else)."""
    if path.is_dir():
        entry = {"kind": "local", "path": str(path.resolve())}
        license_id = detect_license(path)
        if license_id:
            entry["license"] = license_id
        overrides = path / "source.yaml"
        if overrides.is_file():
            import yaml

            entry.update(yaml.safe_load(overrides.read_text()) or {})
            entry["exclude"] = list(entry.get("exclude") or []) + ["source.yaml"]
        return entry
    builder = INBOX_DATA_FILES.get(path.suffix.lower())
    return {"kind": "hf", "dataset": builder, "data_files": [str(path.resolve())]} if builder else None


def _settled(path: Path, now: float) -> bool:
    """Nothing in the entry changed in the last INBOX_MIN_AGE_S seconds."""
    newest = max([path.stat().st_mtime] + ([p.stat().st_mtime for p in path.rglob("*")] if path.is_dir() else []))
    return now - newest >= INBOX_MIN_AGE_S


def register_inbox(home: Home, now: float | None = None) -> list[str]:
    """Register every settled, unregistered entry of the home's inbox as a source; returns the new names."""
    inbox = home.inbox
    if not inbox.is_dir():
        return []
    now = time.time() if now is None else now
    known = load_sources(home=home)
    added = []
    for path in sorted(inbox.iterdir()):
        name = source_name(path)
        # Registered entries are skipped before anything reads them: a large tree is walked once, not every tick.
        if path.name.startswith(".") or name in known or not _settled(path, now):
            continue
        entry = inbox_entry(path)
        if entry is None:
            continue
        register_source(entry, name, home=home)
        known[name] = entry
        added.append(name)
    return added


def plan_new_sources(existing: set[str], home: Home,
                     now: float | None = None) -> tuple[list[str], list[tuple[str, str]]]:
    """(partitions to add, (partition, job) to run): registered sources that are not partitions yet, each with the
    job that builds it (an import source: import_and_curate). The built-in stdlib is added without a run."""
    register_inbox(home, now)
    sources = load_sources(home=home)
    new = [name for name in sources if name not in existing]
    return new, [(name, import_job.name if sources[name].kind == "import" else ingest_job.name)
                 for name in new if name != DEFAULT_SOURCE]


@dg.sensor(jobs=[ingest_job, import_job], minimum_interval_seconds=30,
           default_status=dg.DefaultSensorStatus.RUNNING,
           description="New seed sources (inbox drops, sources.yaml entries) become partitions with a generate + "
                       "curate run (an imported dataset: an import + curate run).")
def seed_source_sensor(context: dg.SensorEvaluationContext):
    existing = set(context.instance.get_dynamic_partitions(SEED_SOURCE))
    home = Home.from_env()  # a tick is an entry point: the daemon's CRUCIBLE_HOME, resolved once per tick
    try:
        new, to_run = plan_new_sources(existing, home)
    except SourceError as err:
        return dg.SkipReason(f"sources file problem: {err}")
    if not new:
        return dg.SkipReason(f"no new seed sources (inbox: {home.inbox})")
    return dg.SensorResult(
        run_requests=[dg.RunRequest(partition_key=name, run_key=f"new-source:{name}", job_name=job)
                      for name, job in to_run],
        dynamic_partitions_requests=[seed_source_partitions.build_add_request(new)],
    )


evaluation_automation = dg.AutomationConditionSensorDefinition(
    "evaluation_automation", target=dg.AssetSelection.groups(EVALUATE), run_tags=GPU_TAG,
    default_status=dg.DefaultSensorStatus.RUNNING, minimum_interval_seconds=30,
    description="Evaluates each new checkpoint once (benchmark_scores, teacher_selection) and acts on each new "
                "decision (teacher): their automation conditions.")


def nightly_sources() -> list[str]:
    return [s.strip() for s in os.environ.get("CRUCIBLE_NIGHTLY_SOURCES", DEFAULT_SOURCE).split(",") if s.strip()]


@dg.schedule(job=ingest_job, cron_schedule="0 2 * * *", execution_timezone="UTC",
             default_status=dg.DefaultScheduleStatus.STOPPED,
             description="A new round partition per nightly source (CRUCIBLE_NIGHTLY_SOURCES), generated and "
                         "curated.")
def nightly_generation(context: dg.ScheduleEvaluationContext):
    registered = load_sources()
    unknown = [s for s in nightly_sources() if s not in registered]
    if unknown:
        return dg.SkipReason(f"CRUCIBLE_NIGHTLY_SOURCES names unregistered sources {unknown}; register them in "
                             f"sources.yaml")
    day = context.scheduled_execution_time.strftime("%Y%m%d")
    keys = [round_partition(s, day) for s in nightly_sources()]
    # Schedules cannot return partition requests (sensors can); adding them here is idempotent.
    new = [k for k in keys if k not in set(context.instance.get_dynamic_partitions(SEED_SOURCE))]
    if new:
        context.instance.add_dynamic_partitions(SEED_SOURCE, new)
    return [dg.RunRequest(partition_key=k, run_key=f"nightly:{k}") for k in keys]
