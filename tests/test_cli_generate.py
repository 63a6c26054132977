"""`crucible generate`: the generation phase from the command line, against the scripted teacher."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.assets.generate.test_generation import PARTITION, make_home
from tests.conftest import require_bwrap
from tests.openai_stub_server import StubServer, StubState
from tests.scripted_teacher import ScriptedTeacher

ROOT = Path(__file__).resolve().parent.parent


def crucible(*args: str, home: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "cli.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "CRUCIBLE_HOME": str(home), "HOME": str(home)})


def test_generate_prints_a_summary_and_records_the_run(tmp_path):
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
    # The run is in the persistent instance under CRUCIBLE_HOME, where `make ui` finds it.
    assert (home / "dagster" / "dagster.yaml").read_text().startswith("telemetry:")
    assert (home / "dagster" / "history").is_dir()


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
        first = crucible("generate", "--source", PARTITION, "--seeds", "8", *url, home=home)
        assert first.returncode == 0, first.stderr[-2000:]
        done = crucible("generate", "--method", "interaction_simulation", "--source", PARTITION, *url, home=home)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout)
    assert summary["method"] == "interaction_simulation" and summary["started_from"] == 6
    assert summary["rows"] >= 1 and summary["rows"] + summary["rejected"] == 6
    assert set(summary["by_method"]) == {"function_instruct", "interaction_simulation"}
    assert summary["by_method"]["function_instruct"] == {"rows": 4, "rejected": 2, "pass_rate": 0.6667}
    assert set(summary["difficulty"]) == {"easy", "medium", "hard"}
