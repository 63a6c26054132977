import subprocess
import sys
from pathlib import Path

import dagster as dg

import definitions

ROOT = Path(__file__).resolve().parent.parent


def test_definitions_load():
    assert isinstance(definitions.defs, dg.Definitions)
    repo = definitions.defs.get_repository_def()
    assert "sandbox" in repo.get_top_level_resources()
    keys = {key.to_user_string() for key in repo.asset_graph.get_all_asset_keys()}
    assert {"seed_snippets", "seed_rejects", "oss_instruct_problems", "problem_rejects", "verified_dialogues",
            "dialogue_rejects", "deduplicated_dialogues", "dedup_rejects", "decontaminated_dialogues",
            "contamination_report", "sft_dataset", "hub_dataset", "finetuned_checkpoint", "hub_model",
            "benchmark_scores", "teacher_selection", "teacher"} <= keys


def test_one_connected_lineage_from_seeds_to_the_hub_and_scores():
    graph = definitions.defs.get_repository_def().asset_graph
    downstream = {dg.AssetKey("seed_snippets")}
    frontier = list(downstream)
    while frontier:
        for child in graph.get(frontier.pop()).child_keys:
            if child not in downstream:
                downstream.add(child)
                frontier.append(child)
    names = {k.to_user_string() for k in downstream}
    assert {"sft_dataset", "hub_dataset", "finetuned_checkpoint", "hub_model", "benchmark_scores",
            "teacher_selection", "teacher"} <= names


def test_generation_assets_share_the_seed_source_partitions():
    from assets.partitions import SEED_SOURCE

    repo = definitions.defs.get_repository_def()
    for name in ("seed_snippets", "oss_instruct_problems", "verified_dialogues", "deduplicated_dialogues",
                 "decontaminated_dialogues"):
        partitions = repo.asset_graph.get(dg.AssetKey(name)).partitions_def
        assert isinstance(partitions, dg.DynamicPartitionsDefinition) and partitions.name == SEED_SOURCE


def test_dagster_definitions_validate():
    dagster = Path(sys.executable).parent / "dagster"
    result = subprocess.run([str(dagster), "definitions", "validate", "-w", "workspace.yaml"], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_teacher_steps_of_evaluation_are_in_the_teacher_pool_and_training_goes_through_pipes():
    from assets.keys import TEACHER_POOL

    repo = definitions.defs.get_repository_def()
    for name in ("benchmark_scores", "teacher_selection"):
        assert repo.asset_graph.get(dg.AssetKey(name)).pools == {TEACHER_POOL}
    assert not repo.asset_graph.get(dg.AssetKey("finetuned_checkpoint")).pools
    # No run-level teacher limit is left: the pool replaced the crucible/teacher run tag.
    assert not [job.name for job in repo.get_all_jobs() if "crucible/teacher" in job.tags]
    trainer = definitions.defs.resources["trainer"]
    assert isinstance(trainer, dg.PipesSubprocessClient) and Path(trainer.cwd) == ROOT
