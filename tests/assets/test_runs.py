"""Runs started from Python (assets/runs.py): named jobs, whole or a subset of their assets, with the caller's
resources in place of the definitions' own."""

import dagster as dg

from assets.keys import HUB_DATASET, SFT_DATASET
from assets.runs import run_job
from resources.dagster_home import PID_TAG
from resources.home import Home
from resources.hub import HubPublisher
from tests.dialogue_rows import write_dialogues


def test_a_subset_of_a_named_job_runs_with_the_callers_resources(tmp_path, monkeypatch):
    """`crucible demo` trains and stages the checkpoint as subsets of the `train` job: a subset used to be rebuilt
    with the definitions' resources and refused the caller's ('resource ... conflicts')."""
    home = Home(tmp_path / "home")
    monkeypatch.setenv("CRUCIBLE_HOME", str(home.root))
    write_dialogues("stdlib", range(6), ("decontaminated_dialogues",), home=home)
    instance = dg.DagsterInstance.ephemeral()
    hub = HubPublisher(home=str(home.root))
    only_the_table = run_job("dataset", home, {"hub": hub}, assets=[SFT_DATASET], instance=instance)
    assert only_the_table.success and only_the_table.dagster_run.job_name == "dataset"
    assert only_the_table.asset_materializations_for_node(SFT_DATASET)
    assert not (home.root / "hub" / "datasets").exists()  # hub_dataset was not in the subset
    assert only_the_table.dagster_run.tags[PID_TAG].isdigit()
    staged = run_job("dataset", home, {"hub": hub}, assets=[HUB_DATASET], instance=instance)
    assert staged.success and (home.root / "hub" / "datasets" / "crucible-code-feedback" / "README.md").is_file()
