"""An OpenAI-compatible server run as a child process: started on a port, waited for, logged and stopped, written once
for every way Crucible starts one (llama-cpp-python's server: resources/llm_server.py; a configured command such as
vLLM, SGLang or llama-server: resources/command_server.py).

    class MyServer(ServerProcess):
        log_prefix = "my"
        def _spawn(self, port, log): return self._popen([...], log)    # start the process, output to `log`
    with MyServer(log_dir=home.logs) as server:                         # returns once GET /v1/models answers
        openai.OpenAI(base_url=server.base_url, api_key="x").chat.completions.create(model=server.model, ...)

The process runs in its own session (Ctrl-C in a terminal reaches only us, and we stop it in order); its stdout and
stderr go to <log_dir>/<log_prefix>-<model>-<port>.log, of which the newest few are kept. `close()` sends SIGTERM to
its process group, then SIGKILL.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import BinaryIO

from resources.bundled_models import LocalTeacherError


class TeacherServerError(LocalTeacherError):
    """A model server did not start or died; the message ends with the tail of its log."""


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def prune_logs(log_dir: Path, pattern: str, keep: int = 10) -> None:
    """Server logs are named by model and port (several servers may run at once); keep the newest few."""
    dated = []
    for path in log_dir.glob(pattern):
        with contextlib.suppress(FileNotFoundError):  # another process may be pruning too
            dated.append((path.stat().st_mtime, path))
    for _, old in sorted(dated, reverse=True)[keep:]:
        old.unlink(missing_ok=True)


def tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.rstrip().splitlines()[-lines:]) or "(log is empty)"


class ServerProcess:
    """The shared life cycle; a subclass says how to start its process (`_spawn`), what it serves (`model`), what to
    check before starting (`_prepare`) and how its messages name it (`describe`)."""

    log_prefix = "server"
    not_started = "the server is not started"

    def __init__(self, *, port: int = 0, host: str = "127.0.0.1", startup_timeout_s: float = 300.0,
                 log_dir: Path) -> None:
        self.requested_port = int(port)
        self.host = host
        self.startup_timeout_s = startup_timeout_s
        self.log_dir = Path(log_dir)
        self.port: int | None = None
        self.log_path: Path | None = None
        self._proc: subprocess.Popen | None = None

    # ---- what a subclass provides ----------------------------------------------------------------------------------

    @property
    def model(self) -> str:
        """The model name to send in requests."""
        raise NotImplementedError

    def describe(self) -> str:
        """How error messages name this server, e.g. "the llama.cpp server for 'smollm2-135m'"."""
        return f"the server for {self.model!r}"

    def _prepare(self) -> None:
        """Checks and preparation before the first launch (raise TeacherServerError to refuse)."""

    def _spawn(self, port: int, log: BinaryIO) -> subprocess.Popen:
        """Start the server process on `port` with its output going to `log` (use `_popen`)."""
        raise NotImplementedError

    # ---- the shared life cycle -------------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The OpenAI base URL, e.g. http://127.0.0.1:PORT/v1."""
        if self.port is None:
            raise TeacherServerError(self.not_started)
        return f"http://{self.host}:{self.port}/v1"

    @property
    def process(self) -> subprocess.Popen | None:
        return self._proc

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.close()

    def start(self):
        """Start the server and return once `GET /v1/models` answers; a no-op while it runs."""
        if self.running():
            return self
        self._prepare()
        # An automatically chosen port can be taken by someone else before the server binds it: retry then.
        attempts = 3 if self.requested_port == 0 else 1
        for attempt in range(attempts):
            self._launch(self.requested_port or free_port(self.host))
            try:
                self._wait_ready()
                return self
            except BaseException as exc:  # Ctrl-C while waiting included: never leave a half-started server
                self.close()
                if (isinstance(exc, TeacherServerError) and attempt + 1 < attempts
                        and "address already in use" in str(exc).lower()):
                    continue
                raise
        raise AssertionError("unreachable")

    def _popen(self, args: list[str], log: BinaryIO, **options) -> subprocess.Popen:
        """subprocess.Popen with the shared settings: no stdin, output to the log, own session."""
        return subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, **options)

    def _launch(self, port: int) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        prune_logs(self.log_dir, f"{self.log_prefix}-*.log")
        self.port = port
        self.log_path = self.log_dir / f"{self.log_prefix}-{self.model}-{port}.log"
        with self.log_path.open("wb") as log:
            self._proc = self._spawn(port, log)

    def _wait_ready(self) -> None:
        assert self._proc is not None and self.log_path is not None
        deadline = time.monotonic() + self.startup_timeout_s
        url = f"{self.base_url}/models"
        while True:
            code = self._proc.poll()
            if code is not None:
                raise TeacherServerError(
                    f"{self.describe()} exited with code {code} before answering; "
                    f"log {self.log_path}:\n{tail(self.log_path)}")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200 and json.load(response).get("data"):
                        return
            except (urllib.error.URLError, OSError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise TeacherServerError(
                    f"{self.describe()} did not answer {url} within {self.startup_timeout_s:.0f} s; "
                    f"log {self.log_path}:\n{tail(self.log_path)}")
            time.sleep(0.2)

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop the server: SIGTERM to its process group, SIGKILL after `timeout_s`."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        else:
            # Reap any leftovers of its session (none expected).
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

    def log_tail(self, lines: int = 25) -> str:
        return tail(self.log_path, lines) if self.log_path else "(not started)"
