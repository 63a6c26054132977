"""Host side of code execution: run many untrusted programs concurrently in a sandbox and collect verdicts.

    pool = SandboxPool(backend="bwrap", workers=2, limits=Limits(timeout_s=5))
    verdicts = pool.run_batch([{"id": "a", "code": "assert 1 + 1 == 2"}])

This module imports neither Dagster nor pydantic, so that `crucible sandbox run` starts at once; the Dagster resource
that wraps the pool is resources/sandbox.py. The default limits are declared once, in sandbox_image/limits.py.
"""

from __future__ import annotations

import dataclasses
import queue
import shutil
import subprocess
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field

from resources.sandbox_workers import (
    BwrapWorker,
    UnsandboxedWorker,
    WorkerDied,
    bwrap_binary,
    system_binds,
)
from sandbox_image.languages import PYTHON, language_problem
from sandbox_image.limits import (
    DEFAULT_FILE_SIZE_MB,
    DEFAULT_MEMORY_MB,
    DEFAULT_OPEN_FILES,
    DEFAULT_OUTPUT_BYTES,
    DEFAULT_PROCESSES,
    DEFAULT_TIMEOUT_S,
)
from sandbox_image.runner import RUNNER_VERSION

STATUSES = ("passed", "failed", "timeout", "memory", "error")
BACKENDS = ("bwrap", "docker", "unsafe-no-sandbox")
UNSAFE_BACKEND = "unsafe-no-sandbox"
# The limits one program may set for itself ({"id", "code", "timeout_s": 1}); the others are the pool's.
PROGRAM_LIMITS = ("timeout_s", "memory_mb")


class SandboxUnavailable(RuntimeError):
    """No way to run code safely here; the message says how to get one."""


@dataclass(frozen=True)
class Limits:
    """Per-task limits. `processes` and `memory_mb` also size the per-worker cgroup."""

    timeout_s: float = DEFAULT_TIMEOUT_S
    memory_mb: int = DEFAULT_MEMORY_MB
    output_bytes: int = DEFAULT_OUTPUT_BYTES
    file_size_mb: int = DEFAULT_FILE_SIZE_MB
    open_files: int = DEFAULT_OPEN_FILES
    processes: int = DEFAULT_PROCESSES

    def __post_init__(self) -> None:
        if not self.timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0, got {self.timeout_s}")
        for name in ("memory_mb", "output_bytes", "file_size_mb", "open_files", "processes"):
            if int(getattr(self, name)) <= 0:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class Verdict:
    """What happened to one program. `status` is one of STATUSES."""

    id: str
    status: str
    exit_code: int | None
    stdout: str
    stderr: str
    wall_ms: float
    backend: str
    limits: dict = field(default_factory=dict)
    runner_version: str = RUNNER_VERSION
    signal: int | None = None
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    language: str = PYTHON
    compile_ms: float | None = None  # the compile step's share of wall_ms; 0.0 when the build was cached
    phase: str | None = None  # compiled languages: "compile" when the build failed (stderr is the compiler's), "run"

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def public(self) -> dict:
        """The CLI's output row."""
        return {k: getattr(self, k) for k in ("id", "status", "exit_code", "stdout", "stderr", "wall_ms", "language",
                                              "compile_ms")}


def error_verdict(task_id, reason: str, backend: str, limits: dict | None = None) -> Verdict:
    return Verdict(id=task_id, status="error", exit_code=None, stdout="", stderr=reason, wall_ms=0.0,
                   backend=backend, limits=limits or {})


def bwrap_problem() -> str | None:
    """None when bubblewrap can start a sandbox here, else why not."""
    binary = bwrap_binary()
    if binary is None:
        return "bubblewrap is not installed"
    probe = [binary, "--unshare-all", "--unshare-user", "--die-with-parent", *system_binds(),
             "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "/usr/bin/true"]
    try:
        result = subprocess.run(probe, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bubblewrap failed to start: {exc}"
    if result.returncode != 0:
        return f"bubblewrap cannot create namespaces here: {result.stderr.strip()[:200]}"
    return None


HOW_TO_INSTALL = ("install bubblewrap (as root: apt-get install -y bubblewrap, or run `make setup`) "
                  "or start Docker and build the image (`make sandbox-docker`)")


def check_backend(backend: str) -> None:
    """Raise SandboxUnavailable with a one-line fix when `backend` cannot run code here."""
    if backend not in BACKENDS:
        raise SandboxUnavailable(f"unknown sandbox backend {backend!r}: choose one of {', '.join(BACKENDS)}")
    if backend == "bwrap":
        problem = bwrap_problem()
        if problem:
            raise SandboxUnavailable(f"cannot run code: {problem}; {HOW_TO_INSTALL}")
    elif backend == "docker":
        from resources.sandbox_docker import docker_problem

        problem = docker_problem()
        if problem:
            raise SandboxUnavailable(f"cannot run code with the docker backend: {problem}")


class SandboxPool:
    """N sandbox workers serving a batch of programs concurrently. Use as a context manager or call close()."""

    def __init__(self, backend: str = "bwrap", workers: int = 2, limits: Limits | None = None,
                 python: str = "/usr/bin/python3", tmpfs_mb: int = 64, docker_image: str | None = None) -> None:
        check_backend(backend)
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        if shutil.which(python) is None and backend != "docker":
            raise SandboxUnavailable(f"sandbox interpreter {python} not found; install python3 (apt-get install -y "
                                     "python3) or set the sandbox `python` option")
        self.backend = backend
        self.limits = limits or Limits()
        self.python, self.tmpfs_mb, self.docker_image = python, tmpfs_mb, docker_image
        self._idle: queue.Queue = queue.Queue()
        self._all: list = []
        self._lock = threading.Lock()
        self.restarts = 0
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sandbox")
        self.size = workers
        for i in range(workers):
            self._idle.put(i)
            self._all.append(None)

    # -- workers -------------------------------------------------------------------------------------------------
    def _new_worker(self, index: int):
        limits = self.limits.as_dict()
        if self.backend == "bwrap":
            worker = BwrapWorker(index, limits, python=self.python, tmpfs_mb=self.tmpfs_mb)
        elif self.backend == "docker":
            from resources.sandbox_docker import DockerWorker

            worker = DockerWorker(index, limits, image=self.docker_image, tmpfs_mb=self.tmpfs_mb)
        else:
            worker = UnsandboxedWorker(index, limits, python=self.python)
        worker.start()
        return worker

    def _worker(self, index: int):
        worker = self._all[index]
        if worker is None or not worker.alive:
            if worker is not None:
                worker.close()
                self.restarts += 1
            worker = self._all[index] = self._new_worker(index)
        return worker

    # -- running -------------------------------------------------------------------------------------------------
    def program_limits(self, program: dict) -> dict:
        """The limits `program` runs under: the pool's, with those of PROGRAM_LIMITS that the program sets."""
        limits = self.limits.as_dict()
        for key in PROGRAM_LIMITS:
            if program.get(key) is not None:
                limits[key] = program[key]
        return limits

    def _task(self, program: dict) -> dict:
        return {**self.program_limits(program), "id": program.get("id"), "code": program["code"],
                "language": program.get("language") or PYTHON}

    def run_one(self, program: dict) -> Verdict:
        problem = program_problem(program)
        if problem:
            return error_verdict(program.get("id") if isinstance(program, dict) else None, problem, self.backend,
                                 self.limits.as_dict())
        task = self._task(program)
        limits = {k: task[k] for k in self.limits.as_dict()}
        index = self._idle.get()
        try:
            try:
                worker = self._worker(index)
                reply = worker.run(task, deadline_s=float(task["timeout_s"]) + 30.0)
            except (WorkerDied, OSError) as exc:
                # The task took its worker down (or the worker failed to start): report it; the next task gets a
                # fresh worker.
                if self._all[index] is not None:
                    self._all[index].close()
                return error_verdict(task["id"], f"sandbox worker died: {exc}", self.backend, limits)
        finally:
            self._idle.put(index)
        return Verdict(
            id=reply.get("id"), status=reply["status"], exit_code=reply.get("exit_code"),
            stdout=reply.get("stdout", ""), stderr=reply.get("stderr", ""), wall_ms=reply.get("wall_ms", 0.0),
            backend=self.backend, limits=limits, runner_version=worker.hello.get("version", RUNNER_VERSION),
            signal=reply.get("signal"), stdout_truncated=reply.get("stdout_truncated", False),
            stderr_truncated=reply.get("stderr_truncated", False), language=task["language"],
            compile_ms=reply.get("compile_ms"), phase=reply.get("phase"),
        )

    def iter_batch(self, programs: Iterable[dict]) -> Iterator[Verdict]:
        """Yield verdicts as they finish (any order)."""
        futures = [self._executor.submit(self.run_one, p) for p in programs]
        for fut in as_completed(futures):
            yield fut.result()

    def run_batch(self, programs: Iterable[dict]) -> list[Verdict]:
        """Run every program; verdicts come back in input order."""
        return list(self._executor.map(self.run_one, list(programs)))

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        for worker in self._all:
            if worker is not None:
                worker.close()
        self._all = [None] * self.size

    def __enter__(self) -> SandboxPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def program_problem(program) -> str | None:
    """Why `program` cannot run (a one-line reason), or None."""
    if not isinstance(program, dict):
        return "program must be a JSON object with 'id' and 'code'"
    if not isinstance(program.get("code"), str):
        return "program needs a string 'code'"
    timeout = program.get("timeout_s")
    if timeout is not None and (not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or timeout <= 0):
        return f"timeout_s must be a positive number, got {timeout!r}"
    language = program.get("language")
    if language is not None and not isinstance(language, str):
        return f"language must be a string, got {language!r}"
    problem = language_problem(language)
    if problem:
        return problem
    memory = program.get("memory_mb")
    if memory is not None and (not isinstance(memory, int) or isinstance(memory, bool) or memory <= 0):
        return f"memory_mb must be a positive integer, got {memory!r}"
    return None
