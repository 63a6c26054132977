"""resources/progress.py: silent until enabled, bars and lines on the stream it was given, labels from activity()."""

from __future__ import annotations

import asyncio
import io

import pytest

from resources import progress


@pytest.fixture
def stream():
    out = io.StringIO()
    progress.enable(out)
    yield out
    progress.disable()


def test_off_by_default_and_a_no_op(capsys):
    assert not progress.enabled()
    with progress.progress(3, "work") as bar:
        bar.advance(2)
        bar.describe("step")
    progress.say("a line")
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_bars_and_lines_go_to_the_enabled_stream(stream, capsys):
    with progress.progress(4, "work", unit="row") as bar:
        bar.advance(3)
        bar.describe("now here")
        bar.advance()
    progress.say("a line")
    text = stream.getvalue()
    assert "work: 100%" in text and "4/4" in text and "row" in text and "now here" in text
    assert text.rstrip().endswith("a line")
    assert capsys.readouterr() == ("", "")  # neither stdout nor the process's stderr


def test_activity_names_the_bars_opened_inside_it_also_in_asyncio_tasks(stream):
    async def ask() -> None:
        with progress.progress(1, "fallback") as bar:
            bar.advance()

    with progress.activity("questioner turn 2"):
        asyncio.run(ask())
    asyncio.run(ask())
    text = stream.getvalue()
    assert "questioner turn 2: 100%" in text and "fallback: 100%" in text


def test_an_empty_total_shows_no_bar(stream):
    with progress.progress(0, "nothing") as bar:
        bar.advance(0)
    assert stream.getvalue() == ""


def test_wanted_only_on_a_terminal_and_not_quiet():
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert progress.wanted(False, Terminal())
    assert not progress.wanted(True, Terminal())
    assert not progress.wanted(False, io.StringIO())
