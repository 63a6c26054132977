"""Progress of long work on stderr: a process-wide switch the command line turns on, and bars the loops open.

    with progress(len(requests), "teacher") as bar:   # in a shared loop (the teacher client's)
        for answer in answers:
            bar.advance()
    with activity("questioner turn 1"):                # around a call to it: names the bars opened inside
        ask_round(...)
    say("scanning 40 rows")

Everything here is a no-op until `enable()` is called (`crucible` does, when stderr is a terminal and `--quiet` is not
given), so the same loops run silently in tests, in the Dagster UI's runs and in pipes. Bars and lines go to a copy of
the terminal's stderr taken by `enable()`: Dagster redirects file descriptor 2 into its compute-log files while a step
runs, and a bar written there would land in those files instead of on the screen. Stdout is never written.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TextIO

_stream: TextIO | None = None
_activity: ContextVar[str | None] = ContextVar("crucible_progress_activity", default=None)
_open = 0  # bars open now: an inner bar is cleared when it ends, the outermost one stays on the screen


class Progress:
    """A bar that shows nothing (progress is off)."""

    def advance(self, n: int = 1) -> None:
        """`n` more units done."""

    def describe(self, text: str) -> None:
        """What is being worked on now, shown after the bar."""


class _Bar(Progress):
    def __init__(self, bar) -> None:
        self.bar = bar

    def advance(self, n: int = 1) -> None:
        self.bar.update(n)

    def describe(self, text: str) -> None:
        self.bar.set_postfix_str(text, refresh=True)


def enable(stream: TextIO | None = None) -> None:
    """Show progress from now on, on `stream` (default: a duplicate of this process's stderr as it is now)."""
    global _stream
    if stream is None:
        stream = os.fdopen(os.dup(sys.stderr.fileno()), "w", buffering=1, encoding="utf-8", errors="replace")
    _stream = stream


def disable() -> None:
    """Show nothing from now on."""
    global _stream
    _stream = None


def enabled() -> bool:
    return _stream is not None


def wanted(quiet: bool, stream: TextIO = sys.stderr) -> bool:
    """Progress is shown on a terminal, unless the user asked for quiet."""
    try:
        return not quiet and stream.isatty()
    except (AttributeError, ValueError):  # a closed or file-less stream
        return False


@contextmanager
def progress(total: int | None, desc: str, unit: str = "it") -> Iterator[Progress]:
    """A bar of `total` units (None: a counter) labelled with the current activity, else `desc`; closed on exit; a
    no-op while progress is off."""
    global _open
    if _stream is None or total == 0:
        yield Progress()
        return
    from tqdm import tqdm

    # disable=False given, not left to tqdm's default: TQDM_DISABLE in the environment (the trainer sets it for its own
    # libraries' bars) must not switch off what the user asked for.
    bar = tqdm(total=total, desc=_activity.get() or desc, unit=unit, file=_stream, leave=_open == 0, dynamic_ncols=True,
               mininterval=0.5, disable=False)
    _open += 1
    try:
        yield _Bar(bar)
    finally:
        _open -= 1
        bar.close()


@contextmanager
def activity(text: str) -> Iterator[None]:
    """Name the bars opened inside this block (in this thread or its asyncio tasks) `text`."""
    token = _activity.set(text)
    try:
        yield
    finally:
        _activity.reset(token)


def say(line: str) -> None:
    """One line of progress above any open bars; nothing while progress is off."""
    if _stream is None:
        return
    from tqdm import tqdm

    tqdm.write(line, file=_stream)
