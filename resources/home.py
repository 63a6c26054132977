"""CRUCIBLE_HOME: where caches, models, logs and outputs live (default `./.crucible`)."""

import os
from pathlib import Path


def crucible_home() -> Path:
    return Path(os.environ.get("CRUCIBLE_HOME") or ".crucible")
