"""Sandbox verdicts cached by a content hash of (code, backend, limits, runner version, salt), in SQLite (WAL) under
$CRUCIBLE_HOME/cache/verdicts.sqlite.

Re-materializing a partition therefore runs no program twice, and a run killed with SIGKILL keeps every verdict it
had stored. `salt` separates deliberate reruns (the flakiness gate runs the same program twice on purpose).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

from resources.home import crucible_home
from resources.sandbox import SandboxPool, Verdict
from resources.sqlite_wal import WalDatabase
from sandbox_image.runner import RUNNER_VERSION

SCHEMA = "CREATE TABLE IF NOT EXISTS verdicts (key TEXT PRIMARY KEY, verdict TEXT NOT NULL)"


def verdict_key(code: str, backend: str, limits: dict, runner_version: str, salt: str = "") -> str:
    canonical = json.dumps({"code": code, "backend": backend, "limits": limits, "runner": runner_version,
                            "salt": salt}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


class VerdictCache:
    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path else crucible_home() / "cache" / "verdicts.sqlite"
        self._db = WalDatabase(self.path, SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        return self._db.conn()

    def get(self, key: str) -> Verdict | None:
        row = self._conn().execute("SELECT verdict FROM verdicts WHERE key = ?", (key,)).fetchone()
        return Verdict(**json.loads(row[0])) if row else None

    def put(self, key: str, verdict: Verdict) -> None:
        self._conn().execute("INSERT OR REPLACE INTO verdicts VALUES (?, ?)", (key, json.dumps(verdict.as_dict())))


class CachedRunner:
    """Runs programs through a SandboxPool, answering repeats from the cache. `executed` counts real runs."""

    def __init__(self, pool: SandboxPool, cache: VerdictCache | None = None) -> None:
        self.pool = pool
        self.cache = cache or VerdictCache()
        self.executed = 0
        self.cached = 0

    def run(self, programs: list[dict]) -> list[Verdict]:
        """programs: {"id", "code", "salt"?}; verdicts in input order. Sandbox errors (a dead worker) are not cached,
        so a rerun tries them again."""
        limits = self.pool.limits.as_dict()
        keys = [verdict_key(p["code"], self.pool.backend, limits, RUNNER_VERSION, p.get("salt", "")) for p in programs]
        results: list[Verdict | None] = [self.cache.get(k) for k in keys]
        todo = [i for i, r in enumerate(results) if r is None]
        self.cached += len(programs) - len(todo)
        if todo:
            fresh = self.pool.run_batch([{"id": programs[i]["id"], "code": programs[i]["code"]} for i in todo])
            self.executed += len(todo)
            for i, verdict in zip(todo, fresh):
                if verdict.status != "error":
                    self.cache.put(keys[i], verdict)
                results[i] = verdict
        for program, verdict in zip(programs, results):
            verdict.id = program["id"]
        return results
