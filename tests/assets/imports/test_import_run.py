"""`crucible import` end to end on small files in each preset's shape (tests/data/imports/): the import_and_curate
job against a scripted teacher over HTTP, the real bwrap sandbox and the offline embedder; then the SFT dataset mixes
imported and generated rows, every stored check passes, and each export loads with `datasets`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import datasets
import polars as pl
import pytest

from assets.checks.dagster_checks import check_stored
from assets.checks.reruns import reruns_pass
from assets.checks.stored import CheckInput
from assets.imports.importing import ImportRequest, run_import
from assets.keys import DEDUPLICATED_DIALOGUES, IMPORTED_DIALOGUES, SFT_DATASET
from assets.release.export import FORMATS, export_release
from assets.release.sft_dataset import SftConfig
from assets.runs import run_datasets
from assets.schemas import DIALOGUES, frame
from definitions import defs
from resources.embedder import Embedder
from resources.home import Home
from resources.hub import HubPublisher
from resources.llm import TeacherLLM
from resources.sandbox import Sandbox
from resources.store import read_table, table_path, write_table
from tests.conftest import require_bwrap
from tests.dialogue_rows import dialogue_row
from tests.import_teacher import ImportTeacher
from tests.openai_stub_server import StubServer, StubState

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[3]
DATA = ROOT / "tests" / "data" / "imports"
RUNNING_MAX = ("Write a function `running_max(values)` returning, for each position of a list, the largest value "
               "seen so far.")


def resources(home: Home, base_url: str) -> tuple:
    root = str(home.root)
    return (TeacherLLM(base_url=base_url, model="scripted", concurrency=1, home=root),
            Sandbox(workers=2, timeout_s=10, home=root), Embedder(home=root))


def a_generated_partition(home: Home) -> None:
    """A curated partition of generated rows, one of them the problem an imported chat restates."""
    rows = [dialogue_row(i, source="gen") for i in range(3)]
    rows[0]["instruction"] = RUNNING_MAX
    write_table(frame(rows, DIALOGUES), table_path(DEDUPLICATED_DIALOGUES, "gen", home))


def test_magicoder_rows_are_verified_deduplicated_and_decontaminated(tmp_path, monkeypatch):
    require_bwrap()
    monkeypatch.setenv("CRUCIBLE_HOME", str(tmp_path / "home"))
    home = Home.from_env()
    teacher = ImportTeacher()
    with StubServer(StubState(responder=teacher)) as server:
        summary = run_import(ImportRequest("magicoder-oss-instruct", str(DATA / "magicoder.jsonl"), name="oss"),
                             *resources(home, server.base_url), home)
    assert summary["rows_in"] == 9 and summary["extracted"] == 6
    # parse_duration (twice), initials (after its tests were corrected) and the HumanEval problem pass
    assert summary["verified"] == summary["imported"] == 4
    assert summary["rejects"] == {"missing_response": 1, "missing_instruction": 1, "language_not_runnable": 1,
                                  "no_code": 1, "fails_after_repair": 1, "duplicate:exact": 1}
    assert summary["deduplicated"] == 3 and summary["decontaminated"] == 2
    assert summary["contaminated"] == {"HumanEval/0": 1}
    assert teacher.asked["initials"] == 2 and teacher.asked["sum_of_squares"] == 2
    rows = read_table(IMPORTED_DIALOGUES, ["oss"], home=home)
    assert set(rows["method"]) == {"import:magicoder-oss-instruct"} and set(rows["language"]) == {"python"}
    assert set(rows["tests_source"]) == {"teacher"} and rows["passed_turn"].to_list() == [1, 1, 1, 1]
    initials = rows.filter(pl.col("instruction").str.contains("initials")).row(0, named=True)
    assert "== 'A.L.'" in initials["tests"] and initials["seed"] == "parts = name.split()"
    assert initials["seed_id"] == "oss:2" and initials["license"] == "MIT"
    failed = [(line.check, line.asset, line.problem) for line in check_stored(defs, home, partition="oss")
              if line.status == "FAIL"]
    assert failed == []


def test_unverified_chats_dedup_against_a_generated_partition_then_mix_and_export(tmp_path, monkeypatch):
    require_bwrap()
    monkeypatch.setenv("CRUCIBLE_HOME", str(tmp_path / "home"))
    home = Home.from_env()
    a_generated_partition(home)
    with StubServer(StubState(responder=ImportTeacher())) as server:
        summary = run_import(ImportRequest("code-feedback", str(DATA / "code_feedback.jsonl"), verify="none"),
                             *resources(home, server.base_url), home)
    assert summary["source"] == "code_feedback" and summary["verified"] is None
    assert summary["rows_in"] == 3 and summary["imported"] == 2
    # the running_max chat restates a generated problem; the prose answer stays, unverified
    assert summary["rejects"] == {"malformed_messages": 1, "duplicate:exact": 1}
    assert summary["deduplicated"] == summary["decontaminated"] == 1
    lines = check_stored(defs, home, partition="code_feedback")
    assert [(line.check, line.asset, line.problem) for line in lines if line.status == "FAIL"] == []
    # the prose answer has no tests: the re-run check leaves it out and says so
    rerun = reruns_pass("decontaminated_dialogues", "dialogue_id", CheckInput(home, "code_feedback", sample=0))
    assert rerun.passed and rerun.metadata == {"rerun": 0, "unverified_imports": 1}

    # The generated partition's curated rows stand in for its decontaminated ones.
    write_table(read_table(DEDUPLICATED_DIALOGUES, ["gen"], home=home),
                table_path("decontaminated_dialogues", "gen", home))
    mix = {"method:import:code-feedback": 1.0, "source:gen": 2}
    built = run_datasets(HubPublisher(home=str(home.root)), home, SftConfig(mix=mix, test_fraction=0.5))
    assert all(built["checks"].values()), built["checks"]
    sft = read_table(SFT_DATASET, home=home)
    assert sorted(sft["source"].to_list()) == ["code_feedback", "gen", "gen"]
    for fmt in FORMATS:
        out = tmp_path / "export" / fmt
        export_release(home, fmt, out)
        loaded = datasets.load_dataset("parquet", data_dir=str(out / "data"))
        assert sum(len(split) for split in loaded.values()) == 3
    walrus = datasets.load_dataset("parquet", data_dir=str(tmp_path / "export" / "magicoder" / "data"))
    problems = [p for split in walrus.values() for p in split["problem"]]
    assert "What does the walrus operator do?" in problems


def crucible(*args: str, home: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "cli.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={"PATH": "/usr/bin:/bin", "CRUCIBLE_HOME": str(home), "HOME": str(home),
                               "HF_HUB_OFFLINE": "1"})


def test_cli_import_prints_the_summary_and_bad_mappings_are_one_line(tmp_path):
    require_bwrap()
    home = tmp_path / "home"
    bad = crucible("import", "--preset", "generic", "--data", str(DATA / "generic.json"), home=home)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    assert "column 'instruction' (instruction of preset generic) is not in the data" in bad.stderr
    with StubServer(StubState(responder=ImportTeacher())) as server:
        done = crucible("import", "--preset", "evol-codealpaca", "--data", str(DATA / "evol_codealpaca.jsonl"),
                        "--name", "evol", "--base-url", server.base_url, "--model", "scripted", home=home)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout)
    assert summary["rows_in"] == 3 and summary["verified"] == 2 and summary["decontaminated"] == 2
    assert summary["rejects"] == {"missing_response": 1}
    catalog = crucible("catalog", "--sql", "SELECT source, method, count(*) AS n FROM imported_dialogues GROUP BY ALL",
                       home=home)
    assert "evol" in catalog.stdout and "import:evol-codealpaca" in catalog.stdout
