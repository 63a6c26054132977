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


def test_dagster_definitions_validate():
    dagster = Path(sys.executable).parent / "dagster"
    result = subprocess.run([str(dagster), "definitions", "validate", "-w", "workspace.yaml"], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
