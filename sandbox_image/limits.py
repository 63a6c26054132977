"""The sandbox's default per-program limits, declared once.

The runner fills in whatever a task leaves out from `DEFAULTS`; the host side reads the same numbers (the `Limits`
and `Sandbox` of resources/sandbox.py, the options of `crucible sandbox run` and `crucible eval`), so a default
changed here changes everywhere. Standard library only (nothing at all): this module also runs inside the sandbox,
bundled with the runner by sandbox_image/bundle.py.
"""

DEFAULT_TIMEOUT_S = 10.0  # wall clock per program, seconds (the CPU rlimit is one second more)
DEFAULT_MEMORY_MB = 1024  # address space per program, MiB
DEFAULT_OUTPUT_BYTES = 64 * 1024  # captured stdout, and again stderr, per program
DEFAULT_FILE_SIZE_MB = 16  # largest file a program may write, MiB
DEFAULT_OPEN_FILES = 64  # descriptors per process
DEFAULT_PROCESSES = 64  # processes per program (the host sizes each worker's pids cap from it)

DEFAULTS = {
    "timeout_s": DEFAULT_TIMEOUT_S,
    "memory_mb": DEFAULT_MEMORY_MB,
    "output_bytes": DEFAULT_OUTPUT_BYTES,
    "file_size_mb": DEFAULT_FILE_SIZE_MB,
    "open_files": DEFAULT_OPEN_FILES,
    "processes": DEFAULT_PROCESSES,
}
