"""The unpartitioned end of the graph (sft_dataset -> hub_dataset, finetuned_checkpoint -> hub_model,
benchmark_scores, teacher_selection) run from Python, `crucible dataset` or `crucible demo`, recorded in the
persistent Dagster instance like the UI's runs."""

import time

import dagster as dg

from assets.datasets import SFT_DATASET, SftConfig, sft_dataset
from assets.evaluation import BENCHMARK_SCORES, TEACHER_SELECTION, EvalConfig, benchmark_scores, teacher_selection
from assets.publishing import HUB_DATASET, HUB_MODEL, hub_dataset, hub_model
from assets.training import FINETUNED_CHECKPOINT, TrainConfig, finetuned_checkpoint
from resources.dagster_home import persistent_instance
from resources.hub import HubPublisher
from resources.store import ParquetIOManager, catalog_path, read_table

DATASET_ASSETS = [sft_dataset, hub_dataset]
MODEL_ASSETS = [finetuned_checkpoint, hub_model, benchmark_scores, teacher_selection]


def _metadata(result) -> dict:
    return {e.asset_key.to_user_string(): {k: v.value for k, v in e.materialization.metadata.items()}
            for e in result.get_asset_materialization_events()}


def run_datasets(hub: HubPublisher, config: SftConfig | None = None,
                 instance: dg.DagsterInstance | None = None) -> dict:
    """Materialize sft_dataset and hub_dataset; a summary of both (a failed upload raises dg's failure)."""
    started = time.monotonic()
    result = dg.materialize(DATASET_ASSETS, instance=instance or persistent_instance(),
                            resources={"io_manager": ParquetIOManager(), "hub": hub},
                            run_config={"ops": {SFT_DATASET: {"config": (config or SftConfig()).model_dump()}}})
    meta = _metadata(result)
    sft, published = meta.get(SFT_DATASET, {}), meta.get(HUB_DATASET, {})
    return {
        "seconds": round(time.monotonic() - started, 1), "run_id": result.run_id,
        "dataset_version": sft.get("dataset_version"),
        "rows": {"train": sft.get("rows_train"), "test": sft.get("rows_test")},
        "release": sft.get("release"), "card": sft.get("card"),
        "hub": {k: published.get(k) for k in ("status", "staged", "repo_id", "url", "commit")},
        "catalog": str(catalog_path()),
        "checks": {e.check_name: e.passed for e in result.get_asset_check_evaluations()},
    }


def run_models(resources: dict, train: TrainConfig, evaluation: EvalConfig,
               instance: dg.DagsterInstance | None = None) -> dict:
    """Train on the current sft_dataset, stage/publish the checkpoint, score it and decide the next teacher."""
    started = time.monotonic()
    result = dg.materialize([sft_dataset, *MODEL_ASSETS], selection=MODEL_ASSETS,
                            instance=instance or persistent_instance(),
                            resources={"io_manager": ParquetIOManager(), **resources},
                            run_config={"ops": {FINETUNED_CHECKPOINT: {"config": train.model_dump()},
                                                BENCHMARK_SCORES: {"config": evaluation.model_dump()},
                                                TEACHER_SELECTION: {"config": evaluation.model_dump()}}})
    meta = _metadata(result)
    trained, staged = meta.get(FINETUNED_CHECKPOINT, {}), meta.get(HUB_MODEL, {})
    scores = read_table(BENCHMARK_SCORES)
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
