"""DAGSTER_HOME under CRUCIBLE_HOME, so runs started from the command line persist and show in the UI (`make ui`)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import dagster as dg

from resources.home import Home

# Telemetry off: Crucible runs offline by default and sends nothing anywhere. The first-visit "community" dialog (nux)
# off too: it asks for an e-mail address to send to Dagster, and it can cover the asset graph a user opens first.
# One step at a time in each concurrency pool, across all runs: the steps that call the teacher (pool "teacher",
# assets/keys.py) share one machine's model server; with a bigger server raise the pool's limit in the UI
# (Deployment > Concurrency). Run monitoring (the daemon of `make ui`) frees the slots a finished run still holds, as
# one killed with SIGKILL does once it is terminated in the UI; runs started from the command line free what a killed
# crucible process left behind themselves (release_orphaned_slots), since no daemon may be running.
DAGSTER_YAML = ("telemetry:\n  enabled: false\nnux:\n  enabled: false\n"
                "concurrency:\n  pools:\n    granularity: op\n    default_limit: 1\n"
                "run_monitoring:\n  enabled: true\n  free_slots_after_run_end_seconds: 60\n")
# What earlier versions wrote; such a file is upgraded in place (any other file is the user's and is left alone).
OLDER_DEFAULTS = ("telemetry:\n  enabled: false\n", "telemetry:\n  enabled: false\nnux:\n  enabled: false\n")


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


# Runs started by a crucible process carry where it ran, so a later one can tell a run whose process is gone.
HOST_TAG, PID_TAG = "crucible/host", "crucible/pid"


def process_tags() -> dict[str, str]:
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def release_orphaned_slots(instance: dg.DagsterInstance) -> list[str]:
    """Free the concurrency-pool slots of runs that can no longer use them: runs that ended (or were deleted), and
    runs a crucible process on this machine started and that process is gone (killed with SIGKILL: its run still says
    STARTED; it is marked failed). Without this, every later step of the pool would wait for the slot forever when no
    daemon runs. Runs launched by the daemon are left to its run monitoring. Returns the freed run ids."""
    storage = instance.event_log_storage
    freed = []
    for run_id in sorted(storage.get_concurrency_run_ids()):
        run = instance.get_run_by_id(run_id)
        if run is not None and not run.is_finished:
            pid = run.tags.get(PID_TAG, "")
            if run.tags.get(HOST_TAG) != socket.gethostname() or not pid.isdigit() or _alive(int(pid)):
                continue
            instance.report_run_failed(run, f"the crucible process that ran it (pid {pid}) is gone")
        storage.free_concurrency_slots_for_run(run_id)
        freed.append(run_id)
    return freed
