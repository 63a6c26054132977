"""`crucible dataset` and `crucible catalog` from the command line."""

import json
import subprocess
import sys
from pathlib import Path

import dagster as dg

from tests.dialogue_rows import write_dialogues
from tests.hub_stub_server import HubStub

ROOT = Path(__file__).resolve().parent.parent


def crucible(*args: str, home: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "cli.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "CRUCIBLE_HOME": str(home), "HOME": str(home), **env})


def test_dataset_builds_stages_and_the_catalog_answers(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("CRUCIBLE_HOME", str(home))
    write_dialogues("stdlib", range(12))
    write_dialogues("mylib", range(50, 54))
    done = crucible("dataset", home=home)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout)
    assert summary["rows"]["train"] + summary["rows"]["test"] == 16 and summary["rows"]["test"] >= 1
    assert summary["hub"]["status"] == "staged" and Path(summary["hub"]["staged"], "README.md").is_file()
    assert all(summary["checks"].values())
    assert Path(summary["release"], "data", "train-00000-of-00001.parquet").is_file()

    listed = crucible("catalog", home=home)
    assert listed.returncode == 0
    assert any(line.split()[:2] == ["sft_dataset", "16"] for line in listed.stdout.splitlines())
    query = crucible("catalog", "--sql", "SELECT partition, count(*) AS n FROM decontaminated_dialogues "
                     "GROUP BY ALL ORDER BY partition", home=home)
    assert query.returncode == 0 and "mylib" in query.stdout and "stdlib" in query.stdout
    bad = crucible("catalog", "--sql", "SELECT nope FROM nowhere", home=home)
    assert bad.returncode != 0 and bad.stderr.strip().count("\n") == 0 and "nowhere" in bad.stderr


def test_dataset_upload_failure_is_one_line_and_keeps_the_staging(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("CRUCIBLE_HOME", str(home))
    write_dialogues("stdlib", range(6))
    with HubStub(fail={"commit": 403}) as stub:
        done = crucible("dataset", "--repo", "me/crucible-sft", home=home, HF_TOKEN="hf_x", HF_ENDPOINT=stub.url)
    assert done.returncode == 1
    error = [line for line in done.stderr.splitlines() if line.startswith("crucible: error:")]
    assert len(error) == 1 and "upload of dataset me/crucible-sft failed" in error[0]
    staged = home / "hub" / "datasets" / "crucible-code-feedback"
    assert str(staged) in error[0] and (staged / "README.md").is_file()


def test_dataset_of_nothing_fails_in_one_line_naming_the_step_and_the_run(tmp_path):
    home = tmp_path / "home"
    done = crucible("dataset", home=home)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.count("\n") == 1, done.stderr[-2000:]  # no traceback, no Dagster log
    assert done.stderr.startswith("crucible: error: dataset run failed at hub_dataset: sft_dataset is empty")
    run_id = done.stderr.split("(run ")[1].split(";")[0]
    with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
        runs = [r for r in instance.get_runs() if r.run_id.startswith(run_id)]
    assert [(r.job_name, r.status) for r in runs] == [("dataset", dg.DagsterRunStatus.FAILURE)]


def test_a_bad_mix_is_one_line_before_anything_runs(tmp_path):
    home = tmp_path / "home"
    for mix, said in (('{"method:nope": 1}', "names no generation method"), ("{bad", "--mix is not JSON"),
                      ('{"source:stdlib": 1.5}', "is neither a share nor a row cap")):
        done = crucible("dataset", "--mix", mix, home=home)
        assert done.returncode == 2 and said in done.stderr and done.stderr.count("\n") == 1
    assert not (home / "dagster").exists()
