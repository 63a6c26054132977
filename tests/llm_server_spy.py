"""A spy in place of the bundled model's llama.cpp server, for tests of who starts it and where requests go.

    servers = spy_servers(monkeypatch, port=stub.port)   # LocalTeacherServer.start/running/close patched
    ...                                                  # code under test starts "servers" at 127.0.0.1:port
    assert servers.started == ["smollm2-135m"] and servers.closed == []

No model is loaded: a started spy answers at http://127.0.0.1:PORT/v1 (an OpenAI stub server there, if the test needs
answers) under the bundled model's name, or the name given as `served_as`. Servers get `slots` slots: 1 is
llama-cpp-python's server, more a llama-server (whose binary is never run), whatever this machine has installed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from resources import llm_server
from resources.bundled_models import ResolvedModel
from resources.llm_server import LocalTeacherServer


@dataclass
class ServerSpy:
    started: list[str] = field(default_factory=list)  # the model of each start, in order
    closed: list[str] = field(default_factory=list)


def spy_servers(monkeypatch, port: int = 4321, served_as: str | None = None, slots: int = 1) -> ServerSpy:
    spy = ServerSpy()
    monkeypatch.setattr(llm_server, "DEFAULT_ENGINE", "python" if slots == 1 else "llama-server")
    monkeypatch.setattr(llm_server, "llama_server_binary", lambda: Path("/usr/bin/true"))
    monkeypatch.setenv("CRUCIBLE_TEACHER_SLOTS", str(slots))

    def start(self: LocalTeacherServer) -> LocalTeacherServer:
        name = str(self.model_spec)
        spy.started.append(name)
        self.port = port
        self.resolved = ResolvedModel(Path(f"/spy/{name}.gguf"), served_as or name)
        return self

    def close(self: LocalTeacherServer, timeout_s: float = 10.0) -> None:
        if self.port is not None:
            spy.closed.append(str(self.model_spec))
        self.port = None

    monkeypatch.setattr(LocalTeacherServer, "start", start)
    monkeypatch.setattr(LocalTeacherServer, "running", lambda self: self.port is not None)
    monkeypatch.setattr(LocalTeacherServer, "close", close)
    return spy
