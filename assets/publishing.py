"""hub_dataset: the SFT release folder published to the Hub, or staged and validated under $CRUCIBLE_HOME/hub/ when
no token or repo is configured (resources/hub.py)."""

from pathlib import Path

import dagster as dg

from assets.datasets import SFT_DATASET, SftConfig, release_dir
from resources.hub import HubError, HubPublisher

HUB_DATASET = "hub_dataset"


def release_folder(instance: dg.DagsterInstance, version: str) -> Path:
    """The folder sft_dataset's latest materialization wrote (its `release` metadata), or the default name's."""
    event = instance.get_latest_materialization_event(dg.AssetKey(SFT_DATASET))
    entry = event.asset_materialization.metadata.get("release") if event and event.asset_materialization else None
    if entry is not None and Path(entry.path).name == version:
        return Path(entry.path)
    return release_dir(SftConfig().name, version)


@dg.asset(ins={"sft": dg.AssetIn(SFT_DATASET)}, group_name="publish")
def hub_dataset(context: dg.AssetExecutionContext, sft, hub: HubPublisher) -> dg.MaterializeResult:
    """The dataset on the Hub (HF_TOKEN and CRUCIBLE_HUB_DATASET_REPO set) or staged for it."""
    if not len(sft):
        raise dg.Failure("sft_dataset is empty: nothing to publish; generate dialogues first")
    version = sft["dataset_version"][0]
    folder = release_folder(context.instance, version)
    name = folder.parent.name
    try:
        result = hub.publish_dataset(folder, name, message=f"Crucible dataset {name} {version}")
    except HubError as err:
        # One line for the user; the staged folder (if staging got that far) is named in it and kept.
        raise dg.Failure(description=str(err)) from err
    context.log.info(f"{result.status}: {result.staged}" + (f" -> {result.url} @ {result.commit}"
                                                              if result.url else ""))
    return dg.MaterializeResult(metadata={
        "status": result.status, "staged": dg.MetadataValue.path(str(result.staged)),
        "repo_id": result.repo_id or "", "url": dg.MetadataValue.url(result.url) if result.url else "",
        "commit": result.commit or "", "files": result.files, "bytes": result.bytes, "dataset_version": version,
    })
