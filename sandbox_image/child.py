"""The forked child of Crucible's fork-server: sets itself up for one untrusted program, then runs it.

Standard library only; runs inside the sandbox (see sandbox_image/runner.py for the server around it). The child
starts its own session (so its whole process group can be killed), points stdin at /dev/null and stdout/stderr at the
server's pipes, closes every other descriptor, chdirs into the fresh task directory, applies rlimits (CPU, address
space, file size, open files, processes, no core dumps) and executes the program as ``__main__``, the way
``python main.py`` would: same exit status, same traceback without the runner's frames.
"""

from __future__ import annotations

import atexit
import builtins
import io
import math
import os
import resource
import signal
import sys
import traceback
import types

# Written to the status pipe when the program died of MemoryError; the server reads it, the program never sees it.
STATUS_MEMORY = b"M"


def set_limits(task: dict) -> None:
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


def run_child(task: dict, workdir: str, out_w: int, err_w: int, status_w: int, argv: list[str] | None = None,
              env: dict | None = None) -> None:
    """In the forked child: isolate, limit, and execute the program (Python source in this interpreter), or, given
    `argv`, replace this process with that command (a compiler, a compiled program, another language's runtime).
    Never returns."""
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
        set_limits(task)
        if argv is not None:
            _exec(argv, env)
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


def _exec(argv: list[str], env: dict | None) -> None:
    """Become `argv` (limits, descriptors and session stay). A failure to start is the program failing, with the
    reason on its stderr and the shell's status for a command that cannot run."""
    try:
        os.execve(argv[0], argv, env if env is not None else dict(os.environ))
    except OSError as exc:
        os.write(2, f"cannot start {argv[0]}: {exc.strerror}\n".encode())
        os._exit(127)


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
        os.write(status_w, STATUS_MEMORY)
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
