"""What the fork-server does after every task so that nothing a task started or wrote reaches the next one.

Standard library only; runs inside the sandbox (see sandbox_image/runner.py). The task's process group is killed and,
when the server is PID 1 of its own PID namespace, every other process in the namespace too (daemons that left the
task's session with setsid included); exited children are reaped; the scratch directory, POSIX shared memory and
message queues and SysV IPC objects are emptied, even directories a task made unreadable or unwritable.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import stat
import time

WORK_ROOT = os.environ.get("CRUCIBLE_SANDBOX_TMP", "/tmp")

# /proc/sysvipc/<kind>: first two columns are key and id; the ctl call and the IPC_RMID command remove by id.
_SYSV = {"shm": "shmctl", "sem": "semctl", "msg": "msgctl"}
_IPC_RMID = 0


def kill_leftovers(pgid: int) -> None:
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
        reap_all()
        if not _other_processes():
            return
        time.sleep(0.001)


def _other_processes() -> bool:
    me = os.getpid()
    try:
        return any(name.isdigit() and int(name) != me for name in os.listdir("/proc"))
    except OSError:
        return False


def reap_all(block_pid: int | None = None) -> int | None:
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


def clean_scratch() -> None:
    """Everything a task could leave for the next one: /tmp, POSIX shared memory and queues, SysV IPC objects."""
    _wipe(WORK_ROOT)
    if os.getpid() != 1:
        return  # not our own namespace (unsandboxed runs): these are the host's, not ours to clear
    for shared in ("/dev/shm", "/dev/mqueue"):
        _wipe(shared)
    _remove_sysv_ipc()


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
