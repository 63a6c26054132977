"""Crucible's fork-server: runs untrusted Python programs one after another inside a sandbox.

This file runs *inside* the sandbox (bubblewrap namespace or container) and uses the standard library only.
It is started once per worker and then serves tasks over its stdin/stdout, one JSON object per line:

    host -> runner   {"id": "...", "code": "...", "timeout_s": 3.0, "memory_mb": 512, "output_bytes": 65536,
                      "file_size_mb": 16, "open_files": 64, "processes": 64}
    runner -> host   {"id": "...", "status": "passed", "exit_code": 0, "signal": null, "stdout": "...",
                      "stderr": "...", "stdout_truncated": false, "stderr_truncated": false, "wall_ms": 12.3}

The first line the runner writes is a hello: {"ready": true, "version": ..., "pid": ..., "uid": ...}.

Why a fork-server written here rather than a library: forking a warm interpreter per task is what makes execution
fast (no interpreter start per program), and the sandbox-side guarantees (subreaper, namespace sweep, /tmp wipe,
per-task rlimits) are specific to how Crucible lays out its sandbox; no maintained library does this.

Per task the runner forks a child that: starts its own session (so its whole process group can be killed), points
stdin at /dev/null and stdout/stderr at pipes, closes every other descriptor, chdirs into a fresh empty directory,
applies rlimits (CPU, address space, file size, open files, processes, no core dumps) and executes the program as
``__main__``. The server enforces the wall-clock limit, caps captured output, kills the child's process group and,
when it is PID 1 of its own PID namespace, every other process left in the namespace; then it wipes /tmp.
"""

from __future__ import annotations

import atexit
import builtins
import ctypes
import gc
import io
import json
import math
import os
import resource
import select
import shutil
import signal
import stat
import sys
import time
import traceback
import types

RUNNER_VERSION = "1.0.0"

PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36

# Exit code a child uses to say "the program died of MemoryError"; reported through the status pipe, never shown.
_STATUS_MEMORY = b"M"

DEFAULTS = {
    "timeout_s": 10.0,
    "memory_mb": 1024,
    "output_bytes": 64 * 1024,
    "file_size_mb": 16,
    "open_files": 64,
    "processes": 64,
}

PRELOADED_MODULES = (
    "typing", "collections", "math", "re", "itertools", "functools", "heapq", "bisect", "string", "dataclasses",
    "json", "copy", "operator", "fractions", "decimal", "statistics", "hashlib", "unittest", "doctest",
)

WORK_ROOT = os.environ.get("CRUCIBLE_SANDBOX_TMP", "/tmp")
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


def _set_limits(task: dict) -> None:
    timeout = float(task["timeout_s"])
    cpu = max(1, math.ceil(timeout) + 1)
    limits = [
        (resource.RLIMIT_CPU, cpu),
        (resource.RLIMIT_FSIZE, int(task["file_size_mb"]) * 1024 * 1024),
        (resource.RLIMIT_NOFILE, int(task["open_files"])),
        (resource.RLIMIT_CORE, 0),
    ]
    if int(task["memory_mb"]) > 0:
        limits.append((resource.RLIMIT_AS, int(task["memory_mb"]) * 1024 * 1024))
    if int(task["processes"]) > 0 and os.getuid() != 0:
        # RLIMIT_NPROC counts every process of this uid; the kernel ignores it for root, which we never are in
        # production (the host side picks a non-root uid per worker).
        limits.append((resource.RLIMIT_NPROC, int(task["processes"])))
    for which, value in limits:
        try:
            resource.setrlimit(which, (value, value))
        except (ValueError, OSError):
            soft, hard = resource.getrlimit(which)
            if hard != resource.RLIM_INFINITY and value > hard:
                resource.setrlimit(which, (hard, hard))


def _run_child(task: dict, workdir: str, out_w: int, err_w: int, status_w: int) -> None:
    """In the forked child: isolate, limit, and execute the program. Never returns."""
    code = 1
    try:
        os.setsid()
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        os.closerange(3, status_w)
        os.closerange(status_w + 1, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
        os.chdir(workdir)
        for sig in (signal.SIGPIPE, signal.SIGXFSZ):
            signal.signal(sig, signal.SIG_DFL if sig == signal.SIGPIPE else signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8")
        sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8", errors="backslashreplace",
                                      line_buffering=False)
        sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8", errors="backslashreplace",
                                      line_buffering=True)
        sys.__stdin__, sys.__stdout__, sys.__stderr__ = sys.stdin, sys.stdout, sys.stderr
        _set_limits(task)
        code = _execute(task["code"], status_w)
    except BaseException:  # noqa: BLE001 - the child must always leave through os._exit
        try:
            traceback.print_exc()
        except BaseException:  # noqa: BLE001
            pass
        code = 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except BaseException:  # noqa: BLE001 - a full pipe or closed stream must not block the exit
                pass
        os._exit(code)


def _execute(source: str, status_w: int) -> int:
    """Run `source` as the __main__ script and return its exit status the way the interpreter would."""
    main = types.ModuleType("__main__")
    main.__dict__.update({"__builtins__": builtins, "__file__": os.path.join(os.getcwd(), "main.py")})
    sys.modules["__main__"] = main
    sys.argv = ["main.py"]
    try:
        exec(compile(source, "main.py", "exec"), main.__dict__)  # noqa: S102 - this *is* the sandboxed execution
        status = 0
    except SystemExit as exc:
        status = _exit_status(exc)
    except MemoryError as exc:
        os.write(status_w, _STATUS_MEMORY)
        _print_program_exception(exc)
        status = 1
    except BaseException as exc:  # noqa: BLE001 - any uncaught exception is the program failing
        _print_program_exception(exc)
        status = 1
    try:
        atexit._run_exitfuncs()
    except BaseException:  # noqa: BLE001
        traceback.print_exc()
    return status


def _print_program_exception(exc: BaseException) -> None:
    """Print the traceback as `python main.py` would: without the runner's own frames."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == _execute.__code__.co_filename:
        tb = tb.tb_next
    traceback.print_exception(type(exc), exc, tb)


def _exit_status(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code & 0xFF
    print(exc.code, file=sys.stderr)
    return 1


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


def _kill_leftovers(pgid: int) -> None:
    """Kill the task's process group and, when we are PID 1 of our own namespace, every other process in it."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if os.getpid() != 1:
        return
    # kill(-1) reaches every process in the namespace but ourselves, including daemons that left the task's session
    # with setsid. A fork bomb can fork between the signal and its delivery, so repeat until nothing is left.
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        try:
            os.kill(-1, signal.SIGKILL)
        except ProcessLookupError:
            pass
        _reap_all()
        if not _other_processes():
            return
        time.sleep(0.001)


def _other_processes() -> bool:
    me = os.getpid()
    try:
        return any(name.isdigit() and int(name) != me for name in os.listdir("/proc"))
    except OSError:
        return False


def _reap_all(block_pid: int | None = None) -> int | None:
    """Reap every exited child; return the raw wait status of `block_pid` if it was among them."""
    found = None
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return found
        if pid == 0:
            return found
        if pid == block_pid:
            found = status


def _wipe(path: str) -> None:
    """Empty `path`, including directories a task made unreadable or unwritable."""
    try:
        entries = os.listdir(path)
    except OSError:
        return
    for name in entries:
        target = os.path.join(path, name)
        if os.path.isdir(target) and not os.path.islink(target):
            _make_removable(target)
            shutil.rmtree(target, ignore_errors=True)
        else:
            try:
                os.unlink(target)
            except OSError:
                pass


def _clean_scratch() -> None:
    """Everything a task could leave for the next one: /tmp, POSIX shared memory and queues, SysV IPC objects."""
    _wipe(WORK_ROOT)
    if os.getpid() != 1:
        return  # not our own namespace (unsandboxed runs): these are the host's, not ours to clear
    for shared in ("/dev/shm", "/dev/mqueue"):
        _wipe(shared)
    _remove_sysv_ipc()


# /proc/sysvipc/<kind>: first two columns are key and id; the ctl call and the IPC_RMID command remove by id.
_SYSV = {"shm": "shmctl", "sem": "semctl", "msg": "msgctl"}
_IPC_RMID = 0


def _remove_sysv_ipc() -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return
    for kind, ctl in _SYSV.items():
        try:
            lines = open(f"/proc/sysvipc/{kind}").read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            ipc_id = int(line.split()[1])
            if kind == "sem":
                libc.semctl(ipc_id, 0, _IPC_RMID)
            else:
                getattr(libc, ctl)(ipc_id, _IPC_RMID, None)


def _make_removable(directory: str) -> None:
    try:
        os.chmod(directory, stat.S_IRWXU)
        entries = os.listdir(directory)
    except OSError:
        return
    for name in entries:
        target = os.path.join(directory, name)
        if os.path.isdir(target) and not os.path.islink(target):
            _make_removable(target)


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
        _run_child(task, workdir, out_w, err_w, status_w)
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
            _kill_leftovers(pid)
            break
        for fd, _event in poller.poll(min(remaining, 0.25) * 1000):
            if fd == _WAKE_R:
                _drain(fd)
            for c in captures:
                if c.fd == fd and c.open:
                    c.pump()
                    if not c.open:
                        poller.unregister(fd)
        wait_status = _reap_all(pid)
    wall_ms = (time.monotonic() - start) * 1000.0
    # The program is done (or killed); anything it left behind goes too, then we drain what is already in the pipes.
    _kill_leftovers(pid)
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
    _reap_all()
    _clean_scratch()
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
    elif flag == _STATUS_MEMORY or sig == signal.SIGKILL:
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
    _clean_scratch()
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
