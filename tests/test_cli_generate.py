"""`crucible generate` and `crucible curate`: generation and curation from the command line, against the scripted
teacher, each a run of its named job in the persistent Dagster instance."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import dagster as dg

from resources.home import Home
from resources.store import read_table
from tests.assets.generate.test_generation import PARTITION, make_home
from tests.conftest import require_bwrap
from tests.openai_stub_server import StubServer, StubState
from tests.scripted_teacher import ScriptedTeacher

ROOT = Path(__file__).resolve().parent.parent
CURATED = {"deduplicated_dialogues": 4, "dedup_rejects": {}, "decontaminated_dialogues": 4, "contaminated": {}}


def crucible(*args: str, home: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "cli.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={"PATH": "/usr/bin:/bin", "CRUCIBLE_HOME": str(home), "HOME": str(home),
                               "HF_HUB_OFFLINE": "1"})


def job_of(run_id: str, home: Path) -> str:
    """The job name the run is recorded under in the home's Dagster instance (what the UI shows)."""
    with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
        return instance.get_run_by_id(run_id).job_name


def test_generate_curates_and_then_a_dataset_builds(tmp_path):
    require_bwrap()
    home = make_home(tmp_path)
    with StubServer(StubState(responder=ScriptedTeacher())) as server:
        done = crucible("generate", "--source", PARTITION, "--seeds", "8", "--base-url", server.base_url,
                        "--model", "scripted", home=home)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout)
    assert summary["seeds"] == 8 and summary["problems"] == 6 and summary["verified_dialogues"] == 4
    assert summary["pass_rate_by_turn"]["1"] == 0.5 and summary["pass_rate_by_turn"]["2"] == 0.6667
    assert summary["problem_rejects"] == {"no_tests_code": 1, "tests_pass_trivial_solution": 1}
    assert summary["problems_by_tests_source"] == {"questioner": 4, "reference_outputs": 2}
    assert summary["dialogue_rejects"] == {"unsolved_after_max_turns": 1, "reference_outputs_unconfirmed": 1}
    assert summary["curation"] == CURATED
    # The run is in the persistent instance under CRUCIBLE_HOME, where `make ui` finds it, under the job's name.
    assert (home / "dagster" / "dagster.yaml").read_text().startswith("telemetry:")
    assert job_of(summary["run_id"], home) == "generate_and_curate"
    assert done.stderr == ""  # no terminal: no progress, and no Dagster log

    dataset = crucible("dataset", home=home)
    assert dataset.returncode == 0, dataset.stderr[-2000:]
    built = json.loads(dataset.stdout)
    assert built["rows"]["train"] + built["rows"]["test"] == 4 and built["hub"]["status"] == "staged"
    assert job_of(built["run_id"], home) == "dataset"


def test_no_curate_then_curate(tmp_path):
    require_bwrap()
    home = make_home(tmp_path)
    early = crucible("curate", "--source", PARTITION, home=home)
    assert early.returncode == 2 and early.stderr.count("\n") == 1, early.stderr[-1500:]
    assert f"source '{PARTITION}' has no generated dialogues" in early.stderr
    assert f"run `crucible generate --source {PARTITION}` first" in early.stderr
    with StubServer(StubState(responder=ScriptedTeacher())) as server:
        url = ("--base-url", server.base_url, "--model", "scripted")
        done = crucible("generate", "--source", PARTITION, "--seeds", "8", "--no-curate", *url, home=home)
        assert done.returncode == 0, done.stderr[-2000:]
        generated = json.loads(done.stdout)
        assert generated["verified_dialogues"] == 4 and "curation" not in generated
        assert job_of(generated["run_id"], home) == "generate"
        assert not (home / "data" / "deduplicated_dialogues").exists()
        curated = crucible("curate", "--source", PARTITION, *url, home=home)
    assert curated.returncode == 0, curated.stderr[-2000:]
    summary = json.loads(curated.stdout)
    assert {k: summary[k] for k in CURATED} == CURATED and summary["source"] == PARTITION
    assert job_of(summary["run_id"], home) == "curate"


def test_generate_bad_input_is_one_line(tmp_path):
    for args, message in ((("--seeds", "0"), "--seeds must be >= 1"),
                          (("--source", "nowhere"), "seed source 'nowhere' is not registered"),
                          (("--feedback", "loud"), "--feedback 'loud'"),
                          (("--base-url", "", "--teacher", "/nowhere/model.gguf"),
                           "unknown model '/nowhere/model.gguf'")):
        base = () if "--base-url" in args else ("--base-url", "http://127.0.0.1:9/v1")
        done = crucible("generate", *args, *base, home=tmp_path)
        assert done.returncode == 2, done.stderr[-1500:]
        assert done.stderr.count("\n") == 1 and message in done.stderr, done.stderr[-1500:]


def test_generate_lists_methods_and_runs_one_on_earlier_results(tmp_path):
    from assets.generate.methods import METHODS

    require_bwrap()
    listed = crucible("generate", "--list-methods", home=tmp_path)
    assert listed.returncode == 0 and listed.stdout.split() == list(METHODS)
    home = make_home(tmp_path)
    url = ("--base-url", "http://127.0.0.1:9/v1", "--model", "scripted")
    for args, message in ((("--method", "nope"), "unknown generation method 'nope'"),
                          (("--method", "evol_instruct"), "starts from verified problems and there are none: run "
                                                          f"`crucible generate --source {PARTITION}` first"),
                          (("--method", "code_correction"), "starts from verified dialogues of function_instruct")):
        done = crucible("generate", "--source", PARTITION, *args, *url, home=home)
        assert done.returncode == 2 and done.stderr.count("\n") == 1 and message in done.stderr, done.stderr[-1500:]
    with StubServer(StubState(responder=ScriptedTeacher())) as server:
        url = ("--base-url", server.base_url, "--model", "scripted")
        first = crucible("generate", "--source", PARTITION, "--seeds", "8", "--no-curate", *url, home=home)
        assert first.returncode == 0, first.stderr[-2000:]
        done = crucible("generate", "--method", "interaction_simulation", "--source", PARTITION, *url, home=home)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout)
    assert summary["method"] == "interaction_simulation" and summary["started_from"] == 6
    assert summary["rows"] >= 1 and summary["rows"] + summary["rejected"] == 6
    assert set(summary["by_method"]) == {"function_instruct", "interaction_simulation"}
    assert summary["by_method"]["function_instruct"] == {"rows": 4, "rejected": 2, "pass_rate": 0.6667}
    assert set(summary["difficulty"]) == {"easy", "medium", "hard"}
    assert job_of(summary["run_id"], home) == "generate_method"
    # The source is curated again with the new method's rows (each method deduplicated within its own rows).
    assert summary["curation"]["deduplicated_dialogues"] >= 4 + 1
    assert job_of(summary["curation"]["run_id"], home) == "curate"


def test_generate_in_another_language(tmp_path):
    from tests.assets.generate.methods.test_oss_instruct_languages import Responder

    require_bwrap()
    home = tmp_path / "home"
    home.mkdir()
    seeds = ROOT / "tests" / "data" / "seed_code" / "rust"
    (home / "sources.yaml").write_text(
        f"sources:\n  rustseeds: {{kind: local, path: {seeds}, license: MIT, languages: [rust]}}\n")
    no_rust = crucible("generate", "--method", "oss_instruct", "--language", "rust", "--source", "stdlib",
                       "--base-url", "http://127.0.0.1:9/v1", home=home)
    assert no_rust.returncode == 2 and no_rust.stderr.count("\n") == 1
    assert "source 'stdlib' reads python files only" in no_rust.stderr
    with StubServer(StubState(responder=Responder("rust"))) as server:
        done = crucible("generate", "--method", "oss_instruct", "--language", "rust", "--source", "rustseeds",
                        "--base-url", server.base_url, "--model", "scripted", home=home)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout)
    # One window of each of the two seed files, each a verified Rust row, labelled by the programmer's answers.
    assert summary["rows"] == 2 and summary["rejected"] == 0, summary
    assert summary["details"]["language"] == "rust" and summary["details"]["windows"] == 2
    assert summary["difficulty"] == {"easy": 2, "medium": 0, "hard": 0}
    rows = read_table("method_dialogues", ["oss_instruct|rustseeds"], home=Home.from_env(str(home)))
    assert set(rows["language"]) == {"rust"} and set(rows["source"]) == {"rustseeds"}
    assert all(m[1]["content"].startswith("```rust\n") for m in rows["messages"])
