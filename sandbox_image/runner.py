"""Crucible's fork-server: runs untrusted Python programs one after another inside a sandbox.

This package runs *inside* the sandbox (bubblewrap namespace or container) and uses the standard library only.
The server is started once per worker and then serves tasks over its stdin/stdout, one JSON object per line:

    host -> runner   {"id": "...", "code": "...", "timeout_s": 3.0, "memory_mb": 512, "output_bytes": 65536,
                      "file_size_mb": 16, "open_files": 64, "processes": 64}
    runner -> host   {"id": "...", "status": "passed", "exit_code": 0, "signal": null, "stdout": "...",
                      "stderr": "...", "stdout_truncated": false, "stderr_truncated": false, "wall_ms": 12.3}

The first line the runner writes is a hello: {"ready": true, "version": ..., "pid": ..., "uid": ...}. A limit a task
leaves out takes its default from sandbox_image/limits.py.

Why a fork-server written here rather than a library: forking a warm interpreter per task is what makes execution
fast (no interpreter start per program), and the sandbox-side guarantees (subreaper, namespace sweep, /tmp wipe,
per-task rlimits) are specific to how Crucible lays out its sandbox; no maintained library does this.

This module is the server: the protocol loop, and per task a fork, the wall-clock limit, capped output capture and
the verdict. The forked child sets itself up and runs the program in sandbox_image/child.py; what a task leaves
behind (processes, /tmp, IPC objects) is cleared by sandbox_image/cleanup.py. Inside a sandbox these modules are not
importable as a package: sandbox_image/bundle.py makes them one script, which is what actually runs there.
"""

from __future__ import annotations

import ctypes
import gc
import json
import os
import select
import signal
import sys
import time

from sandbox_image.child import STATUS_MEMORY, run_child
from sandbox_image.cleanup import WORK_ROOT, clean_scratch, kill_leftovers, reap_all
from sandbox_image.limits import DEFAULTS

# Part of every verdict-cache key: bump it when a change to the runner can change a verdict.
RUNNER_VERSION = "1.0.0"

PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36

PRELOADED_MODULES = (
    "typing", "collections", "math", "re", "itertools", "functools", "heapq", "bisect", "string", "dataclasses",
    "json", "copy", "operator", "fractions", "decimal", "statistics", "hashlib", "unittest", "doctest",
)

_WAKE_R: int | None = None  # read end of the SIGCHLD self-pipe, set by _harden_server


def _prctl(option: int, value: int) -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(option, value, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux, or no libc symbol: the namespace still contains us
        pass


def _harden_server() -> None:
    """Non-dumpable (no ptrace or /proc/<pid>/mem from our children) and a subreaper for orphaned grandchildren."""
    _prctl(PR_SET_DUMPABLE, 0)
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    # PID 1 only receives signals it handles; Python handles SIGINT by default, so a task could kill us with it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # SIGCHLD wakes the poll loop through a self-pipe the moment a task exits, instead of polling on a timer.
    global _WAKE_R
    _WAKE_R, wake_w = os.pipe()
    os.set_blocking(_WAKE_R, False)
    os.set_blocking(wake_w, False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)


class _Capture:
    """Reads a pipe without blocking, keeping at most `cap` bytes and counting the rest."""

    def __init__(self, fd: int, cap: int) -> None:
        self.fd, self.cap = fd, cap
        self.data = bytearray()
        self.dropped = 0
        self.open = True

    def pump(self) -> None:
        try:
            chunk = os.read(self.fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            self.open = False
            return
        room = self.cap - len(self.data)
        if room > 0:
            self.data += chunk[:room]
        self.dropped += max(0, len(chunk) - max(room, 0))

    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace")


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except (BlockingIOError, OSError):
        pass


def run_task(task: dict) -> dict:
    task = {**DEFAULTS, **{k: v for k, v in task.items() if v is not None}}
    workdir = os.path.join(WORK_ROOT, "task")
    os.makedirs(workdir, mode=0o700, exist_ok=True)
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    status_r, status_w = os.pipe()
    for fd in (out_r, err_r, status_r):
        os.set_blocking(fd, False)
    sys.stdout.flush()
    sys.stderr.flush()
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        os.close(out_r), os.close(err_r), os.close(status_r)
        if _WAKE_R is not None:
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        run_child(task, workdir, out_w, err_w, status_w)
    os.close(out_w), os.close(err_w), os.close(status_w)
    cap = int(task["output_bytes"])
    captures = [_Capture(out_r, cap), _Capture(err_r, cap)]
    deadline = start + float(task["timeout_s"])
    timed_out = False
    wait_status = None
    poller = select.poll()
    for c in captures:
        poller.register(c.fd, select.POLLIN | select.POLLHUP)
    if _WAKE_R is not None:
        poller.register(_WAKE_R, select.POLLIN)
    while wait_status is None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            timed_out = True
            kill_leftovers(pid)
            break
        for fd, _event in poller.poll(min(remaining, 0.25) * 1000):
            if fd == _WAKE_R:
                _drain(fd)
            for c in captures:
                if c.fd == fd and c.open:
                    c.pump()
                    if not c.open:
                        poller.unregister(fd)
        wait_status = reap_all(pid)
    wall_ms = (time.monotonic() - start) * 1000.0
    # The program is done (or killed); anything it left behind goes too, then we drain what is already in the pipes.
    kill_leftovers(pid)
    if wait_status is None:
        try:
            _, wait_status = os.waitpid(pid, 0)
        except ChildProcessError:
            wait_status = None
    for c in captures:
        for _ in range(64):
            if not c.open:
                break
            before = len(c.data) + c.dropped
            c.pump()
            if len(c.data) + c.dropped == before:
                break
    try:
        flag = os.read(status_r, 1)
    except (BlockingIOError, OSError):
        flag = b""
    for fd in (out_r, err_r, status_r):
        os.close(fd)
    reap_all()
    clean_scratch()
    return _verdict(task, wait_status, timed_out, flag, captures, wall_ms)


def _verdict(task, wait_status, timed_out, flag, captures, wall_ms) -> dict:
    exit_code, sig = None, None
    if wait_status is not None:
        if os.WIFEXITED(wait_status):
            exit_code = os.WEXITSTATUS(wait_status)
        elif os.WIFSIGNALED(wait_status):
            sig = os.WTERMSIG(wait_status)
            exit_code = -sig
    if timed_out or sig == signal.SIGXCPU:
        status = "timeout"
    elif flag == STATUS_MEMORY or sig == signal.SIGKILL:
        # An unsolicited SIGKILL is the memory cgroup's OOM killer: we only send SIGKILL on timeout.
        status = "memory"
    elif exit_code == 0:
        status = "passed"
    else:
        status = "failed"
    out, err = captures
    return {
        "id": task.get("id"),
        "status": status,
        "exit_code": exit_code,
        "signal": sig,
        "stdout": out.text(),
        "stderr": err.text(),
        "stdout_truncated": out.dropped > 0,
        "stderr_truncated": err.dropped > 0,
        "wall_ms": round(wall_ms, 3),
    }


def _warm_up() -> None:
    """Import the modules most programs import, then freeze the heap: each forked task finds them already loaded
    (`import typing` alone costs ~10 ms cold) and shares the server's pages instead of copying them.

    `random` is left out on purpose: a child must not inherit its parent's generator state (CPython reseeds it after
    fork, but other generators would not be)."""
    for name in PRELOADED_MODULES:
        try:
            __import__(name)
        except ImportError:
            pass
    gc.collect()
    gc.freeze()


def serve(stdin=None, stdout=None) -> None:
    stdin = stdin or sys.stdin.buffer
    stdout = stdout or sys.stdout.buffer
    _harden_server()
    _warm_up()
    clean_scratch()
    hello = {"ready": True, "version": RUNNER_VERSION, "pid": os.getpid(), "uid": os.getuid(),
             "python": sys.version.split()[0]}
    stdout.write((json.dumps(hello) + "\n").encode())
    stdout.flush()
    for line in stdin:
        if not line.strip():
            continue
        task = None
        try:
            task = json.loads(line)
            if not isinstance(task, dict) or not isinstance(task.get("code"), str):
                raise ValueError("task must be a JSON object with a string 'code'")
            reply = run_task(task)
        except Exception as exc:  # noqa: BLE001 - report, keep serving
            reply = {"id": task.get("id") if isinstance(task, dict) else None, "status": "error",
                     "exit_code": None, "signal": None, "stdout": "", "stderr": f"runner: {exc}",
                     "stdout_truncated": False, "stderr_truncated": False, "wall_ms": 0.0}
        stdout.write((json.dumps(reply) + "\n").encode())
        stdout.flush()


if __name__ == "__main__":
    serve()
