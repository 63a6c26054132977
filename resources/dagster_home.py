"""DAGSTER_HOME under CRUCIBLE_HOME, so runs started from the command line persist and show in the UI (`make ui`)."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from resources.home import crucible_home

# Telemetry off: Crucible runs offline by default and sends nothing anywhere.
DAGSTER_YAML = "telemetry:\n  enabled: false\n"


def dagster_home() -> Path:
    """$DAGSTER_HOME if set, else $CRUCIBLE_HOME/dagster; created with a dagster.yaml when missing."""
    home = Path(os.environ.get("DAGSTER_HOME") or crucible_home().resolve() / "dagster")
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(DAGSTER_YAML)
    return home


def persistent_instance() -> dg.DagsterInstance:
    os.environ["DAGSTER_HOME"] = str(dagster_home())
    return dg.DagsterInstance.get()
