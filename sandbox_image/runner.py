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

import collections
import ctypes
import gc
import hashlib
import json
import os
import select
import signal
import sys
import time

from sandbox_image.child import STATUS_MEMORY, run_child
from sandbox_image.cleanup import WORK_ROOT, clean_scratch, kill_leftovers, reap_all
from sandbox_image.languages import LANGUAGES, PYTHON, language_problem
from sandbox_image.limits import DEFAULTS

# Part of every verdict-cache key: bump it when a change to the runner can change a verdict.
RUNNER_VERSION = "1.1.0"

PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36

PRELOADED_MODULES = (
    "typing", "collections", "math", "re", "itertools", "functools", "heapq", "bisect", "string", "dataclasses",
    "json", "copy", "operator", "fractions", "decimal", "statistics", "hashlib", "unittest", "doctest",
)

_WAKE_R: int | None = None  # read end of the SIGCHLD self-pipe, set by _harden_server

# Compiled artifacts by the hash of (language, compile command, source), oldest first, in this server's memory: a
# program run again (a rerun gate, a benchmark sample answered twice) skips its compiler. Bytes in all, at most.
BUILD_CACHE_BYTES = 48 * 1024 * 1024
_BUILDS: collections.OrderedDict = collections.OrderedDict()


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
    language = LANGUAGES.get(task.get("language") or PYTHON)
    problem = language_problem(task.get("language")) or (language.missing() if language else None)
    if problem:
        return _error(task, problem)
    workdir = os.path.join(WORK_ROOT, "task")
    os.makedirs(workdir, mode=0o700, exist_ok=True)
    start = time.monotonic()
    deadline = start + float(task["timeout_s"])
    try:
        if language.name == PYTHON:
            return _verdict(task, *_step(task, workdir, deadline))
        return _run_built(task, language, workdir, start, deadline)
    finally:
        reap_all()
        clean_scratch()


def _run_built(task: dict, language, workdir: str, start: float, deadline: float) -> dict:
    """Another language than Python: write the source, compile it (or take the artifacts from the cache), run it.
    The verdict's `compile_ms` is the compile step's share of `wall_ms` (0.0 for a cached build, None when the
    language has no compile step)."""
    with open(os.path.join(workdir, language.source), "w", encoding="utf-8") as handle:
        handle.write(task["code"])
    env = language.environment(dict(os.environ), WORK_ROOT)
    compile_ms = None
    if language.compile:
        key = _build_key(language, task)
        built = _BUILDS.get(key)
        if built is not None:
            _BUILDS.move_to_end(key)
            _restore(built, workdir)
            compile_ms = 0.0
        else:
            steps = _step(task, workdir, deadline, language.argv(language.compile, task), env,
                          language.step_limits(task))
            compile_ms = round((time.monotonic() - start) * 1000.0, 3)
            verdict = _verdict(task, *steps, language=language)
            if verdict["status"] != "passed":
                # The compiler's output is the program's failure; a compiler that ran out of time or memory says so.
                verdict["stderr"] = "\n".join(t for t in (verdict["stdout"], verdict["stderr"]) if t)
                verdict["stdout"] = ""
                verdict.update(compile_ms=compile_ms, phase="compile")
                return verdict
            _remember(key, workdir, language.artifacts)
    steps = _step(task, workdir, deadline, language.argv(language.run, task), env, language.step_limits(task))
    verdict = _verdict(task, *steps, language=language)
    verdict["wall_ms"] = round((time.monotonic() - start) * 1000.0, 3)
    verdict.update(compile_ms=compile_ms, phase="run")
    return verdict


def _build_key(language, task: dict) -> str:
    spec = json.dumps([language.name, language.argv(language.compile, task), task["code"]])
    return hashlib.sha256(spec.encode()).hexdigest()


def _restore(built: dict, workdir: str) -> None:
    for name, data in built.items():
        path = os.path.join(workdir, name)
        with open(path, "wb") as handle:
            handle.write(data)
        os.chmod(path, 0o700)


def _remember(key: str, workdir: str, artifacts: tuple[str, ...]) -> None:
    """Keep a fresh build's artifacts in the server's own memory, read right after the compiler exited and before
    the program ran, so nothing the program does can change what a later run of the same source gets."""
    built = {}
    for name in artifacts:
        try:
            with open(os.path.join(workdir, name), "rb") as handle:
                built[name] = handle.read(BUILD_CACHE_BYTES + 1)
        except OSError:
            return
    size = sum(map(len, built.values()))
    if size > BUILD_CACHE_BYTES // 4:
        return
    _BUILDS[key] = built
    while sum(sum(map(len, b.values())) for b in _BUILDS.values()) > BUILD_CACHE_BYTES:
        _BUILDS.popitem(last=False)


def _step(task: dict, workdir: str, deadline: float, argv: list[str] | None = None, env: dict | None = None,
          limits: dict | None = None):
    """Fork one child that runs the Python program (argv None) or execs `argv` under `limits` (default: the task's);
    wait for it until `deadline`, capture its output, and kill whatever it left. Returns what `_verdict` needs."""
    limits = limits or task
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
        run_child(limits, workdir, out_w, err_w, status_w, argv, env)
    os.close(out_w), os.close(err_w), os.close(status_w)
    cap = int(task["output_bytes"])
    captures = [_Capture(out_r, cap), _Capture(err_r, cap)]
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
    return wait_status, timed_out, flag, captures, wall_ms


def _error(task: dict, reason: str) -> dict:
    return {"id": task.get("id"), "status": "error", "exit_code": None, "signal": None, "stdout": "",
            "stderr": reason, "stdout_truncated": False, "stderr_truncated": False, "wall_ms": 0.0}


def _verdict(task, wait_status, timed_out, flag, captures, wall_ms, language=None) -> dict:
    exit_code, sig = None, None
    if wait_status is not None:
        if os.WIFEXITED(wait_status):
            exit_code = os.WEXITSTATUS(wait_status)
        elif os.WIFSIGNALED(wait_status):
            sig = os.WTERMSIG(wait_status)
            exit_code = -sig
    if timed_out or sig == signal.SIGXCPU:
        status = "timeout"
    elif flag == STATUS_MEMORY or sig == signal.SIGKILL or (
            exit_code != 0 and language is not None and language.out_of_memory(captures[1].text())):
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
            reply = _error(task if isinstance(task, dict) else {}, f"runner: {exc}")
        stdout.write((json.dumps(reply) + "\n").encode())
        stdout.flush()


if __name__ == "__main__":
    serve()
