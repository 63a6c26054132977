"""The one way Crucible runs programs: `CachedRunner`, a SandboxPool behind a verdict cache.

    runner = sandbox.runner()                   # the Sandbox resource's pool; or CachedRunner(pool)
    verdicts = runner.run([{"id": "a", "code": "assert f(1) == 2"},
                           {"id": "b", "code": slow_check, "timeout_s": 30}])    # a program's own limit
    runner.executed, runner.cached              # programs really run / answered without a run

Verdicts are cached by a content hash of (code, backend, limits, runner version, salt), in SQLite (WAL) under
$CRUCIBLE_HOME/cache/verdicts.sqlite. Re-materializing a partition therefore runs no program twice, and a run killed
with SIGKILL keeps every verdict it had stored. The limits in the key are the ones the program runs under: the pool's,
with any a program sets for itself (resources.sandbox.PROGRAM_LIMITS), so a program without its own limits keeps the
key it always had. `salt` separates deliberate reruns (the flakiness gate runs the same program twice on purpose).
Errors (a dead worker, a malformed program) are never cached.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sqlite3
from pathlib import Path

from resources.home import Home
from resources.sandbox import SandboxPool, Verdict, program_problem
from resources.sqlite_wal import WalDatabase
from sandbox_image.languages import PYTHON
from sandbox_image.runner import RUNNER_VERSION

SCHEMA = "CREATE TABLE IF NOT EXISTS verdicts (key TEXT PRIMARY KEY, verdict TEXT NOT NULL)"


def verdict_key(code: str, backend: str, limits: dict, runner_version: str, salt: str = "",
                language: str = PYTHON) -> str:
    canonical = json.dumps({"code": code, "backend": backend, "limits": limits, "runner": runner_version,
                            "salt": salt, "language": language}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


class VerdictCache:
    def __init__(self, path: Path | None = None, home: Home | None = None) -> None:
        self.path = Path(path) if path else (home or Home.from_env()).cache / "verdicts.sqlite"
        self._db = WalDatabase(self.path, SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        return self._db.conn()

    def get(self, key: str) -> Verdict | None:
        row = self._conn().execute("SELECT verdict FROM verdicts WHERE key = ?", (key,)).fetchone()
        return Verdict(**json.loads(row[0])) if row else None

    def put(self, key: str, verdict: Verdict) -> None:
        self._conn().execute("INSERT OR REPLACE INTO verdicts VALUES (?, ?)", (key, json.dumps(verdict.as_dict())))


class CachedRunner:
    """Runs programs through a SandboxPool: each distinct program once, repeats answered from the cache.
    `executed` counts real runs, `cached` the programs answered without one. `use_cache=False` reads and writes no
    cache (every distinct program runs)."""

    def __init__(self, pool: SandboxPool, cache: VerdictCache | None = None, use_cache: bool = True) -> None:
        self.pool = pool
        self.cache = (cache or VerdictCache()) if use_cache else None
        self.executed = 0
        self.cached = 0

    @property
    def backend(self) -> str:
        return self.pool.backend

    def key(self, program: dict) -> str | None:
        """The program's cache key; None for a malformed program (the pool answers it with an error verdict)."""
        if program_problem(program):
            return None
        return verdict_key(program["code"], self.pool.backend, self.pool.program_limits(program), RUNNER_VERSION,
                           program.get("salt", ""), program.get("language") or PYTHON)

    def run(self, programs: list[dict]) -> list[Verdict]:
        """programs: {"id", "code", "language"?, "salt"?, "timeout_s"?, "memory_mb"?}; verdicts in input order, each
        carrying its program's id. Programs with the same key run once per call."""
        keys = [self.key(p) for p in programs]
        answers: dict[str, Verdict] = {}
        todo: dict[str | int, dict] = {}  # one program per key that must run; malformed ones by their position
        for i, (key, program) in enumerate(zip(keys, programs)):
            if key is None:
                todo[i] = program
            elif key not in answers and key not in todo:
                hit = self.cache.get(key) if self.cache is not None else None
                if hit is None:
                    todo[key] = program
                else:
                    answers[key] = hit
        fresh = self.pool.run_batch(list(todo.values())) if todo else []
        self.executed += len(todo)
        self.cached += len(programs) - len(todo)
        for key, verdict in zip(todo, fresh):
            answers[key] = verdict
            if self.cache is not None and isinstance(key, str) and verdict.status != "error":
                self.cache.put(key, verdict)
        return [dataclasses.replace(answers[i if key is None else key],
                                    id=program.get("id") if isinstance(program, dict) else None)
                for i, (key, program) in enumerate(zip(keys, programs))]
