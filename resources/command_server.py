"""An OpenAI-compatible server started from a configured command: vLLM, SGLang or llama-server on a GPU machine,
serving a checkpoint folder or a GGUF file.

    server = CommandServer("vllm serve {model} --served-model-name {name} --host {host} --port {port}",
                           "/home/me/.crucible/checkpoints/cpu-smollm2-...", name="student")
    with server:                                     # returns once GET /v1/models answers
        openai.OpenAI(base_url=server.base_url, api_key="x").chat.completions.create(model=server.model, ...)

    CommandServer("llama-server -m {model} --host {host} --port {port} -a {name}", "/models/student.q8_0.gguf")

The template is split like a shell line (shlex, no shell runs it) and then each word is filled in: {model} (the
checkpoint or GGUF path), {port}, {host}, {name} (the model name clients send; default the path's last part without
.gguf) and {python} (this interpreter); {{ and }} are literal braces. It must contain {port}. The same life cycle as
the bundled model's server (resources/server_process.py): own session, output to
$CRUCIBLE_HOME/logs/command-<name>-<port>.log, SIGTERM then SIGKILL on close(); a process that exits before answering
raises TeacherServerError with its log tail. The server inherits this process's environment (CUDA settings, caches).
"""

from __future__ import annotations

import ctypes
import os
import shlex
import signal
import string
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO

from resources.home import Home
from resources.server_process import ServerProcess, TeacherServerError

PLACEHOLDERS = ("model", "port", "host", "name", "python")
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def _exit_with_parent(parent: int):
    """A preexec_fn: the child gets SIGTERM when the thread that started it dies (a SIGKILLed parent included).

    This covers the direct child only: a server that starts workers of its own (vLLM's engine, SGLang's scheduler)
    must stop them itself, which these servers do on SIGTERM, the reason this is SIGTERM rather than SIGKILL. The
    signal follows the *thread* that forked, so start long-lived servers from a thread that outlives them."""
    def set_death_signal() -> None:  # runs in the child, between fork and exec
        if _LIBC is None:
            return
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return set_death_signal


def _default_name(model: str) -> str:
    return Path(model).name.removesuffix(".gguf") or model


def parse_template(template: str) -> list[str]:
    """The template's words, checked: it splits, names only known placeholders and contains {port}."""
    try:
        words = shlex.split(template)
    except ValueError as exc:
        raise TeacherServerError(f"server command {template!r} does not split like a shell line ({exc}): "
                                 "fix its quoting") from None
    if not words:
        raise TeacherServerError("the server command is empty: give one such as "
                                 "'vllm serve {model} --host {host} --port {port}'")
    seen = set()
    for word in words:
        try:
            seen |= {field for _, field, _, _ in string.Formatter().parse(word) if field is not None}
        except ValueError as exc:
            raise TeacherServerError(f"server command word {word!r}: {exc} (write a literal brace as {{{{ or }}}})")
    unknown = seen - set(PLACEHOLDERS)
    if unknown:
        raise TeacherServerError(f"server command {template!r} has unknown placeholders {sorted(unknown)}: use "
                                 f"{', '.join('{' + p + '}' for p in PLACEHOLDERS)}")
    if "port" not in seen:
        raise TeacherServerError(f"server command {template!r} has no {{port}}: add e.g. `--port {{port}}` so "
                                 "the server listens where Crucible looks")
    return words


class CommandServer(ServerProcess):
    """A server process started from a command template (see the module docstring), as a context manager with the
    same API as LocalTeacherServer: start(), close(), base_url, model, running(), process, log_path, log_tail()."""

    log_prefix = "command"
    not_started = "the command server is not started"

    def __init__(self, command: str, model: str | os.PathLike, *, name: str | None = None, port: int = 0,
                 host: str = "127.0.0.1", startup_timeout_s: float = 900.0, home: Path | None = None,
                 log_dir: Path | None = None, env: Mapping[str, str] | None = None) -> None:
        self.template = command
        self.words = parse_template(command)
        self.model_path = os.fspath(model)
        self.name = name or _default_name(self.model_path)
        self.env = {**os.environ, **(env or {})}
        logs = Path(log_dir) if log_dir is not None else (Home(Path(home)) if home else Home.from_env()).logs
        super().__init__(port=port, host=host, startup_timeout_s=startup_timeout_s, log_dir=logs)

    @property
    def model(self) -> str:
        """The model name to send in requests: `name`."""
        return self.name

    def describe(self) -> str:
        return f"the server `{self.words[0]}` for {self.name!r}"

    def command(self, port: int) -> list[str]:
        """The argv for `port`: the template's words with the placeholders filled in."""
        values = {"model": self.model_path, "port": str(port), "host": self.host, "name": self.name,
                  "python": sys.executable}
        return [word.format_map(values) for word in self.words]

    def _spawn(self, port: int, log: BinaryIO) -> subprocess.Popen:
        argv = self.command(port)
        try:
            return self._popen(argv, log, env=self.env, preexec_fn=_exit_with_parent(os.getpid()))
        except (FileNotFoundError, PermissionError) as exc:
            raise TeacherServerError(f"cannot run {argv[0]!r} ({exc.strerror}): install it or give its full path "
                                     "in the server command") from None
