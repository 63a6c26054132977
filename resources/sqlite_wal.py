"""One SQLite connection per thread, in WAL mode: the storage under Crucible's caches (teacher answers, sandbox
verdicts). WAL lets readers and one writer work at once across processes; with autocommit every write is its own
transaction, so a process killed with SIGKILL loses at most the write it was making."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path


class WalDatabase:
    def __init__(self, path: Path, schema: str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self.conn().execute(schema)

    def conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")  # durable across process kills; WAL keeps it consistent
            conn.execute("PRAGMA busy_timeout=60000")
            self._local.conn = conn
        return conn
