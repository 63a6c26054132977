"""The dataset phase (sft_dataset -> hub_dataset) over every curated seed source, run from Python,
`crucible dataset` or `crucible demo`, recorded in the persistent Dagster instance like the UI's runs."""

import time

import dagster as dg

from assets.datasets import SFT_DATASET, SftConfig, sft_dataset
from assets.publishing import HUB_DATASET, hub_dataset
from resources.dagster_home import persistent_instance
from resources.hub import HubPublisher
from resources.store import ParquetIOManager, catalog_path

DATASET_ASSETS = [sft_dataset, hub_dataset]


def run_datasets(hub: HubPublisher, config: SftConfig | None = None,
                 instance: dg.DagsterInstance | None = None) -> dict:
    """Materialize sft_dataset and hub_dataset; a summary of both (a failed upload raises dg's failure)."""
    started = time.monotonic()
    result = dg.materialize(DATASET_ASSETS, instance=instance or persistent_instance(),
                            resources={"io_manager": ParquetIOManager(), "hub": hub},
                            run_config={"ops": {SFT_DATASET: {"config": (config or SftConfig()).model_dump()}}})
    meta = {e.asset_key.to_user_string(): {k: v.value for k, v in e.materialization.metadata.items()}
            for e in result.get_asset_materialization_events()}
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
