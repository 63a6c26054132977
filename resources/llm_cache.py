"""The teacher's response cache: SQLite in WAL mode under CRUCIBLE_HOME, keyed by a content hash of the request.

WAL lets many readers and one writer work at once across processes; every put is its own committed transaction, so a
process killed with SIGKILL loses at most the response it had not yet stored, and never corrupts the others.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from pathlib import Path

from resources.home import Home
from resources.sqlite_wal import WalDatabase

SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    request TEXT NOT NULL,
    content TEXT NOT NULL,
    finish_reason TEXT,
    usage TEXT NOT NULL,
    created REAL NOT NULL
)
"""


def request_key(model: str, messages: list[dict], params: dict, prompt_version: str | None) -> str:
    """sha256 of the canonical JSON of everything that determines the answer."""
    canonical = json.dumps({"model": model, "messages": messages, "params": params, "prompt_version": prompt_version},
                           sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class LLMCache:
    def __init__(self, path: Path | None = None, home: Home | None = None) -> None:
        self.path = Path(path) if path else (home or Home.from_env()).cache / "llm.sqlite"
        self._db = WalDatabase(self.path, SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        return self._db.conn()

    def get(self, key: str) -> dict | None:
        row = self._conn().execute(
            "SELECT content, finish_reason, usage FROM responses WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        return {"content": row[0], "finish_reason": row[1], "usage": json.loads(row[2])}

    def put(self, key: str, model: str, request: dict, content: str, finish_reason: str | None, usage: dict) -> None:
        self._conn().execute(
            "INSERT OR IGNORE INTO responses VALUES (?, ?, ?, ?, ?, ?, ?)",
            (key, model, json.dumps(request, ensure_ascii=False), content, finish_reason, json.dumps(usage),
             time.time()),
        )

    def __len__(self) -> int:
        return self._conn().execute("SELECT count(*) FROM responses").fetchone()[0]
