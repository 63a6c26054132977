"""Sandbox workers: one long-lived fork-server (sandbox_image/, run as the one script sandbox_image/bundle.py makes)
per worker, behind a backend.

Each worker speaks the runner's line protocol (one JSON request, one JSON reply), implemented once in
`RunnerChannel`. Backends differ only in how the runner process is started and how its stdin/stdout are reached:

- `BwrapWorker`: the runner inside bubblewrap, as a non-root uid, in its own cgroup.
- `DockerWorker` (resources/sandbox_docker.py): the runner as the main process of a locked-down container.
- `UnsandboxedWorker`: the runner as a plain child process. For trusted code and baselines only; never a default.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import threading
import time
from pathlib import Path

from resources.cgroups import WorkerCgroup, create_worker_cgroup
from sandbox_image.bundle import runner_script

# The uid a worker runs as on the host when Crucible runs as root: non-root so RLIMIT_NPROC applies and a task
# can signal nothing of ours; one per worker so workers cannot signal each other either.
HOST_UID_BASE = 61000
SANDBOX_UID = 1000  # the uid the program sees inside the namespace


class WorkerDied(RuntimeError):
    """The runner stopped answering (crashed, was killed, or its transport closed)."""


def runner_source() -> str:
    """The runner as one script, for `python -I -c`: the repository's own sandbox_image/, read at every start."""
    return runner_script()


class RunnerChannel:
    """The runner's line protocol over some byte transport: send one JSON task line, read one JSON reply line, with a
    deadline. Shared by every worker; subclasses supply the transport through `_send`, `_recv`, `alive`, `close` and
    (for error messages) `_diagnostics`."""

    backend = "none"

    def __init__(self, index: int, limits: dict, startup_timeout_s: float = 30.0) -> None:
        self.index = index
        self.limits = limits
        self.startup_timeout_s = startup_timeout_s
        self.hello: dict = {}
        self._buf = b""
        self._lock = threading.Lock()

    # -- transport hooks -----------------------------------------------------------------------------------------
    def _send(self, data: bytes) -> None:
        """Write all of `data` to the runner's stdin; raise OSError when the transport is gone."""
        raise NotImplementedError

    def _recv(self, timeout: float) -> bytes | None:
        """Up to `timeout` seconds for more of the runner's stdout: bytes, None when nothing came, b"" at its end."""
        raise NotImplementedError

    def _diagnostics(self) -> str:
        """': <what the runner said on stderr>' when it is known to have died, else ''."""
        return ""

    @property
    def alive(self) -> bool:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    # -- protocol ------------------------------------------------------------------------------------------------
    def _await_hello(self) -> None:
        self.hello = self._read_reply(time.monotonic() + self.startup_timeout_s)
        if not self.hello.get("ready"):
            raise WorkerDied(f"{self.backend} worker {self.index} sent no hello: {self.hello}")

    def run(self, task: dict, deadline_s: float) -> dict:
        """Send one task, wait for its verdict. `deadline_s` is the host-side backstop beyond the runner's timer."""
        with self._lock:
            if not self.alive:
                raise WorkerDied(f"{self.backend} worker {self.index} is not running")
            try:
                self._send((json.dumps(task) + "\n").encode())
            except OSError as exc:  # BrokenPipeError, a reset socket, ...
                raise WorkerDied(f"{self.backend} worker {self.index}: {exc}{self._diagnostics()}") from exc
            return self._read_reply(time.monotonic() + deadline_s)

    def _read_reply(self, deadline: float) -> dict:
        while b"\n" not in self._buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.close()
                raise WorkerDied(f"{self.backend} worker {self.index} did not answer in time")
            chunk = self._recv(min(remaining, 1.0))
            if chunk is None:
                if not self.alive:
                    raise WorkerDied(f"{self.backend} worker {self.index} exited{self._diagnostics()}")
                continue
            if not chunk:
                raise WorkerDied(f"{self.backend} worker {self.index} closed its output{self._diagnostics()}")
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        try:
            reply = json.loads(line)
        except ValueError as exc:
            # Only the runner writes to this stream; anything else means the worker can no longer be trusted.
            self.close()
            raise WorkerDied(f"{self.backend} worker {self.index} sent a malformed reply: {line[:200]!r}") from exc
        if not isinstance(reply, dict):
            self.close()
            raise WorkerDied(f"{self.backend} worker {self.index} sent a malformed reply: {line[:200]!r}")
        return reply


class _PipeWorker(RunnerChannel):
    """A runner reached over a child process's stdin/stdout pipes."""

    def __init__(self, index: int, limits: dict, startup_timeout_s: float = 30.0) -> None:
        super().__init__(index, limits, startup_timeout_s)
        self.proc: subprocess.Popen | None = None

    # -- lifecycle -----------------------------------------------------------------------------------------------
    def command(self) -> list[str]:
        raise NotImplementedError

    def preexec(self) -> None:
        """Runs in the child between fork and exec."""

    def env(self) -> dict | None:
        """The runner process's environment; None inherits ours (bwrap clears it inside the sandbox)."""
        return None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            self.command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            cwd="/", preexec_fn=self.preexec, env=self.env(), close_fds=True,
        )
        os.set_blocking(self.proc.stdout.fileno(), False)
        self._await_hello()

    def close(self) -> None:
        if self.proc is None:
            return
        try:
            self.proc.kill()
        except ProcessLookupError:
            pass
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                stream.close()
            except OSError:
                pass
        self.proc.wait()
        self.proc = None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # -- transport -----------------------------------------------------------------------------------------------
    def _send(self, data: bytes) -> None:
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def _recv(self, timeout: float) -> bytes | None:
        fd = self.proc.stdout.fileno()
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            return None
        return os.read(fd, 1 << 20)

    def _diagnostics(self) -> str:
        return self._stderr_tail()

    def _stderr_tail(self) -> str:
        if self.proc is None or self.proc.poll() is None:
            return ""
        try:
            err = self.proc.stderr.read()[-500:].decode(errors="replace").strip()
        except (OSError, ValueError):
            return ""
        return f": {err}" if err else ""


class UnsandboxedWorker(_PipeWorker):
    """The runner with no isolation at all. Only for code you trust and for measuring the sandbox's overhead."""

    backend = "unsafe-no-sandbox"

    def __init__(self, index: int, limits: dict, python: str = "/usr/bin/python3", **kw) -> None:
        super().__init__(index, limits, **kw)
        self.python = python
        self.tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"crucible-unsafe-{os.getpid()}-{index}"

    def command(self) -> list[str]:
        self.tmp.mkdir(parents=True, exist_ok=True)
        return [self.python, "-I", "-c", runner_source()]

    def env(self) -> dict:
        return {"CRUCIBLE_SANDBOX_TMP": str(self.tmp), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}

    def close(self) -> None:
        super().close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def bwrap_binary() -> str | None:
    return shutil.which("bwrap")


def system_binds() -> list[str]:
    """Read-only views of the system directories the interpreters and compilers need, preserving merged-/usr
    symlinks."""
    args = ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib64", "lib32", "libx32"):
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    # /etc/java-17-openjdk: the JVM's security and logging settings (symlinked from /usr/lib/jvm); /etc/php: php.ini.
    for etc in ("/etc/alternatives", "/etc/ld.so.cache", "/etc/localtime", "/etc/python3", "/etc/python3.11",
                "/etc/java-17-openjdk", "/etc/php"):
        if os.path.exists(etc):
            args += ["--ro-bind", etc, etc]
    return args


class BwrapWorker(_PipeWorker):
    """The runner inside bubblewrap: every namespace unshared (no network), read-only system, private size-capped
    /tmp, cleared environment, new session, PID 1 of its namespace, dies with us, non-root inside and out."""

    backend = "bwrap"

    def __init__(self, index: int, limits: dict, python: str = "/usr/bin/python3", tmpfs_mb: int = 64, **kw) -> None:
        super().__init__(index, limits, **kw)
        self.python = python
        self.tmpfs_mb = tmpfs_mb
        self.cgroup: WorkerCgroup = WorkerCgroup("none")
        self.host_uid = HOST_UID_BASE + index if os.geteuid() == 0 else os.geteuid()

    def command(self) -> list[str]:
        return [
            bwrap_binary() or "bwrap",
            "--unshare-all", "--unshare-user", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID),
            "--hostname", "sandbox", "--die-with-parent", "--new-session", "--as-pid-1", "--clearenv",
            "--setenv", "PATH", "/usr/bin:/bin", "--setenv", "HOME", "/tmp", "--setenv", "LANG", "C.UTF-8",
            "--setenv", "PYTHONDONTWRITEBYTECODE", "1",
            *system_binds(),
            "--proc", "/proc", "--dev", "/dev",
            "--size", str(self.tmpfs_mb * 1024 * 1024), "--tmpfs", "/tmp",
            "--chdir", "/tmp", "--remount-ro", "/", "--disable-userns", "--cap-drop", "ALL",
            self.python, "-I", "-c", runner_source(),
        ]

    def start(self) -> None:
        # Whole-worker caps: the task's own memory limit plus room for the server and the /tmp tmpfs.
        memory = (int(self.limits["memory_mb"]) + self.tmpfs_mb + 128) * 1024 * 1024
        self.cgroup = create_worker_cgroup(f"w{self.index}", memory, int(self.limits["processes"]) + 8)
        try:
            super().start()
        except BaseException:
            self.cgroup.remove()
            raise

    def preexec(self) -> None:
        self.cgroup.join()
        if os.geteuid() == 0:
            os.setgroups([])
            os.setgid(self.host_uid)
            os.setuid(self.host_uid)

    def close(self) -> None:
        super().close()
        self.cgroup.remove()
