"""Shared fixtures of the method tests: a MethodContext whose teacher is a scripted OpenAI-compatible stub (the
responder given) and whose runner is the real bwrap sandbox behind the verdict cache, all under tmp_path."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from assets.generate.methods.base import MethodContext
from resources.home import Home
from resources.llm import TeacherLLM
from resources.sandbox import Sandbox
from tests.conftest import require_bwrap
from tests.openai_stub_server import StubServer, StubState


@pytest.fixture()
def method_context(tmp_path, monkeypatch) -> Callable:
    """method_context(responder, encode=None) -> a context manager yielding (MethodContext, StubState)."""
    require_bwrap()
    monkeypatch.setenv("CRUCIBLE_HOME", str(tmp_path / "home"))
    home = Home.from_env(str(tmp_path / "home"))

    @contextmanager
    def make(responder: Callable[[list[dict]], str], encode=None, source: str = "stdlib-sample"
             ) -> Iterator[tuple[MethodContext, StubState]]:
        state = StubState(responder=responder)
        sandbox = Sandbox(workers=2, timeout_s=10, home=str(home.root))
        with StubServer(state) as server:
            teacher = TeacherLLM(base_url=server.base_url, model="scripted", concurrency=1, home=str(home.root))
            runner = sandbox.runner()
            try:
                yield MethodContext(teacher.client(), teacher.client(), runner, home, source, encode=encode), state
            finally:
                runner.pool.close()

    return make
