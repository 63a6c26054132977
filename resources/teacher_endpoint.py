"""The teacher endpoint: where teacher requests go and how many may be in flight, decided in this one place.

    endpoint = TeacherEndpoint(base_url="https://api.openai.com/v1", model="gpt-4o-mini", api_key=key)
    endpoint = TeacherEndpoint(bundled="qwen2.5-coder-1.5b")    # no base URL: the bundled model on 127.0.0.1
    with endpoint.serving() as client:                           # a bundled model's server lives for the block
        client.complete_batch([...])
    client = endpoint.client(local.server)                       # or on a server that someone else runs and keeps

A server behind a base URL takes `concurrency` requests at once, each allowed `timeout_s`. A bundled model's llama.cpp
server (resources/llm_server.py) decodes `slots` sequences at once (llama-server's parallel slots; 1 for
llama-cpp-python's server): more in flight would only queue there, time out at the client and be sent again while the
server still works on the abandoned copy; so a bundled endpoint sends as many requests as the server has slots and
waits at least BUNDLED_MIN_TIMEOUT_S for each.

A promoted student (resources/teacher_state.py) is either a GGUF file, which is served like a bundled model, or a
checkpoint served by a configured `command` (vLLM, SGLang, llama-server on a GPU machine: resources/command_server.py),
which batches like any server behind a base URL.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from resources.bundled_models import BUNDLED_MODELS, DEFAULT_MODEL
from resources.files import model_files_sha256, sha256_file
from resources.llm_server import LocalTeacherServer, TeacherServerError, engine_slots

if TYPE_CHECKING:
    from resources.llm import TeacherClient

COMMAND = "command"  # kind and label prefix of an endpoint whose server a command starts
BUNDLED = "bundled"  # `--model bundled[:NAME]` on the command line; "bundled:NAME" names the teacher in rows
BUNDLED_MIN_TIMEOUT_S = 900.0


@dataclass(frozen=True)
class TeacherEndpoint:
    """An OpenAI-compatible server (`base_url`, `model`, `api_key`); or, without a base URL, a checkpoint folder
    served by a `command` template; or else the `bundled` model (a name from BUNDLED_MODELS or the path of a GGUF
    file) served by llama.cpp on this machine."""

    base_url: str | None = None
    model: str | None = None  # the model name on base_url
    api_key: str | None = None
    bundled: str = DEFAULT_MODEL
    concurrency: int = 8  # requests in flight at a server behind base_url or started by a command
    timeout_s: float = 300.0  # per request
    command: str | None = None  # a server command template (resources/command_server.py) serving `checkpoint`
    checkpoint: str | None = None

    @classmethod
    def from_label(cls, text: str) -> TeacherEndpoint | None:
        """'bundled' or 'bundled:NAME' (how the command line names a bundled model) as an endpoint; None otherwise."""
        if text == BUNDLED or text.startswith(BUNDLED + ":"):
            return cls(bundled=text.partition(":")[2] or DEFAULT_MODEL)
        return None

    def __post_init__(self) -> None:
        if self.command and not self.checkpoint:
            raise ValueError("a teacher endpoint with a server command needs the checkpoint it serves")

    @property
    def is_command(self) -> bool:
        return not self.base_url and bool(self.command)

    @property
    def is_bundled(self) -> bool:
        return not self.base_url and not self.command

    @property
    def kind(self) -> str:
        """'bundled', 'command' or 'openai' (any OpenAI-compatible server), as evaluation manifests name backends."""
        return BUNDLED if self.is_bundled else COMMAND if self.is_command else "openai"

    @property
    def name(self) -> str:
        """The model as configured: the bundled model's name or GGUF path, the served checkpoint's folder name, or
        the model name on the server."""
        if self.is_bundled:
            return self.bundled
        return Path(self.checkpoint).name if self.is_command else self.model or "default"

    @property
    def label(self) -> str:
        """How rows name this teacher: 'bundled:NAME' for a bundled model (the inverse of `from_label`),
        'command:CHECKPOINT' for a command-served checkpoint, else the model name on the server."""
        if self.is_bundled:
            return f"{BUNDLED}:{self.bundled}"
        return f"{COMMAND}:{self.checkpoint}" if self.is_command else self.name

    @property
    def served_name(self) -> str:
        """The model name its server answers as, which generated rows carry as teacher_model: a bundled model's
        name, a GGUF file's stem, the command-served checkpoint's folder name, or the model name on base_url."""
        if self.is_bundled and self.bundled not in BUNDLED_MODELS:
            return Path(self.bundled).stem
        return self.name

    @property
    def requests_in_flight(self) -> int:
        """Requests sent at once: a bundled model's server slots (the default engine's), else `concurrency`."""
        return engine_slots() if self.is_bundled else self.concurrency

    @property
    def request_timeout_s(self) -> float:
        return max(self.timeout_s, BUNDLED_MIN_TIMEOUT_S) if self.is_bundled else self.timeout_s

    def model_sha256(self) -> str | None:
        """The sha256 of a bundled model's weights (the registry's, or a GGUF file's own); None behind a base URL."""
        if self.is_command:
            return model_files_sha256(self.checkpoint)
        if not self.is_bundled:
            return None
        entry = BUNDLED_MODELS.get(self.bundled)
        return entry.sha256 if entry else sha256_file(Path(self.bundled).expanduser())

    def client(self, server: Callable[[], LocalTeacherServer] | None = None, **options) -> TeacherClient:
        """A TeacherClient with this endpoint's concurrency and timeout; `options` are TeacherClient's others
        (max_attempts, cache, prices). A bundled endpoint's requests go to `server()`, the started llama.cpp server of
        its model; it is called only then, so an endpoint with a base URL never loads a model."""
        from resources.llm import TeacherClient  # resources.llm builds endpoints, so not imported at the top

        in_flight = self.requests_in_flight
        if self.base_url:
            base_url, model = self.base_url, self.name
        elif server is None:
            raise TeacherServerError(f"the model {self.name!r} has no started server to send requests to")
        else:
            started = server()
            base_url, model = started.base_url, started.model
            in_flight = getattr(started, "slots", in_flight)  # the slots of the server actually started
        return TeacherClient(base_url, model, api_key=self.api_key, concurrency=in_flight,
                             timeout_s=self.request_timeout_s, **options)

    @contextlib.contextmanager
    def serving(self, **options) -> Iterator[TeacherClient]:
        """A client for the length of a `with` block: a bundled model's (or a command's) server is started here and
        stopped after."""
        with contextlib.ExitStack() as stack:
            yield self.client(lambda: stack.enter_context(self.server()), **options)

    def server(self):
        """A new, unstarted server for a bundled or command endpoint (the caller starts and closes it)."""
        if self.is_command:
            from resources.command_server import CommandServer

            return CommandServer(self.command, self.checkpoint, name=self.name)
        return LocalTeacherServer(self.bundled)
