"""hub_dataset and hub_model: the SFT release folder and the latest fine-tuned checkpoint published to the Hub, or
staged and validated under $CRUCIBLE_HOME/hub/ when no token or repo is configured (resources/hub.py).

The dataset upload is tagged `v-<dataset_version>`; the model's is tagged `v-<checkpoint name>` and carries a card
rendered for the Hub (finetune/model_card.py): the checkpoint's benchmark_scores as model-index results, and the
dataset repo it was published to as `datasets`.
"""

from pathlib import Path

import dagster as dg
import polars as pl

from assets.keys import BENCHMARK_SCORES, FINETUNED_CHECKPOINT, PUBLISH, SFT_DATASET
from assets.release.sft_dataset import release_folder
from resources.hub import HubError, HubPublisher, PublishResult, version_tag
from resources.store import ParquetIOManager, read_table


@dg.asset(ins={"sft": dg.AssetIn(SFT_DATASET)}, group_name=PUBLISH)
def hub_dataset(context: dg.AssetExecutionContext, sft, hub: HubPublisher,
                io_manager: dg.ResourceParam[ParquetIOManager]) -> dg.MaterializeResult:
    """The dataset on the Hub (HF_TOKEN and CRUCIBLE_HUB_DATASET_REPO set) or staged for it."""
    if not len(sft):
        raise dg.Failure("sft_dataset is empty: nothing to publish; generate dialogues first")
    version = sft["dataset_version"][0]
    folder = release_folder(context.instance, version, io_manager.paths)
    name = folder.parent.name
    try:
        result = hub.publish_dataset(folder, name, message=f"Crucible dataset {name} {version}",
                                     tag=version_tag(version))
    except HubError as err:
        # One line for the user; the staged folder (if staging got that far) is named in it and kept.
        raise dg.Failure(description=str(err)) from err
    return publish_metadata(context, result, {"dataset_version": version})


def checkpoint_results(scores: pl.DataFrame, checkpoint: str) -> list[dict]:
    """The checkpoint's own benchmark_scores rows (model_role checkpoint), the newest per (benchmark, mode)."""
    if not len(scores) or "checkpoint" not in scores.columns:
        return []
    rows = scores.filter((pl.col("model_role") == "checkpoint") & (pl.col("checkpoint") == checkpoint))
    newest = {(r["benchmark"], r["mode"]): r for r in rows.sort("created_at", nulls_last=False).to_dicts()}
    return [newest[key] for key in sorted(newest)]


# After benchmark_scores, so the published model card carries the scores.
@dg.asset(ins={"checkpoints": dg.AssetIn(FINETUNED_CHECKPOINT)}, deps=[BENCHMARK_SCORES], group_name=PUBLISH)
def hub_model(context: dg.AssetExecutionContext, checkpoints, hub: HubPublisher,
              io_manager: dg.ResourceParam[ParquetIOManager]) -> dg.MaterializeResult:
    """The latest fine-tuned checkpoint on the Hub (HF_TOKEN and CRUCIBLE_HUB_MODEL_REPO set) or staged for it, with
    a model card whose model-index holds its benchmark scores."""
    from finetune.model_card import checkpoint_card

    row = checkpoints.row(-1, named=True)
    folder = Path(row["checkpoint"])
    results = checkpoint_results(read_table(BENCHMARK_SCORES, home=io_manager.paths), str(folder))
    try:
        card = checkpoint_card(folder, results, dataset_id=hub.dataset_repo, model_name=hub.model_repo)
        result = hub.publish_model(folder, row["model_name"], message=f"Crucible model {row['model_name']} "
                                                                      f"(dataset {row['dataset_version']})",
                                   tag=version_tag(row["model_name"]), card=card)
    except (HubError, FileNotFoundError) as err:
        raise dg.Failure(description=str(err)) from err
    return publish_metadata(context, result, {"checkpoint": dg.MetadataValue.path(str(folder)),
                                              "dataset_version": row["dataset_version"],
                                              "evaluation_results": len(results)})


def publish_metadata(context, result: PublishResult, extra: dict) -> dg.MaterializeResult:
    context.log.info(f"{result.status}: {result.staged}" + (f" -> {result.url} @ {result.commit}"
                                                              if result.url else ""))
    return dg.MaterializeResult(metadata={
        "status": result.status, "staged": dg.MetadataValue.path(str(result.staged)),
        "repo_id": result.repo_id or "", "url": dg.MetadataValue.url(result.url) if result.url else "",
        "commit": result.commit or "", "tag": result.tag or "", "files": result.files, "bytes": result.bytes,
        **extra,
    })
