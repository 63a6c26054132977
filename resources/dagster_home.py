"""DAGSTER_HOME under CRUCIBLE_HOME, so runs started from the command line persist and show in the UI (`make ui`)."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from resources.home import Home

# Telemetry off: Crucible runs offline by default and sends nothing anywhere. The first-visit "community" dialog (nux)
# off too: it asks for an e-mail address to send to Dagster, and it can cover the asset graph a user opens first.
DAGSTER_YAML = "telemetry:\n  enabled: false\nnux:\n  enabled: false\n"
# What earlier versions wrote; such a file is upgraded in place (any other file is the user's and is left alone).
OLDER_DEFAULTS = ("telemetry:\n  enabled: false\n",)


def dagster_home(home: Home | None = None) -> Path:
    """$DAGSTER_HOME if set, else the Crucible home's dagster/; created with a dagster.yaml when missing."""
    home = Path(os.environ.get("DAGSTER_HOME") or (home or Home.from_env()).dagster.resolve())
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists() or config.read_text() in OLDER_DEFAULTS:
        config.write_text(DAGSTER_YAML)
    return home


def persistent_instance(home: Home | None = None) -> dg.DagsterInstance:
    # Dagster finds its instance through DAGSTER_HOME only; Crucible's own home is passed down, not through os.environ.
    os.environ["DAGSTER_HOME"] = str(dagster_home(home))
    return dg.DagsterInstance.get()
