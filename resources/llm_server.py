"""The server of a bundled model (resources/bundled_models.py) or any local GGUF file: llama-cpp-python's
OpenAI-compatible server on 127.0.0.1.

    with LocalTeacherServer("qwen2.5-coder-1.5b") as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="local")
        client.chat.completions.create(model=server.model, messages=[...], temperature=0)

`LocalTeacher` is the same server as a Dagster resource, started on first use; `crucible teacher serve` runs it in the
foreground (`serve_foreground`). How many requests it takes at once is the teacher endpoint's rule
(resources/teacher_endpoint.py).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO, TextIO

import dagster as dg
from pydantic import Field, PrivateAttr

from resources.bundled_models import DEFAULT_MODEL, LocalTeacherError, ResolvedModel, resolve_model
from resources.home import Home, home_field
from resources.server_process import ServerProcess, TeacherServerError, free_port, usable_cpus

# Importers of this module's names from before the shared base existed keep working.
__all__ = ["DEFAULT_N_CTX", "LocalTeacher", "LocalTeacherServer", "TeacherServerError", "free_port",
           "serve_foreground", "usable_cpus"]

DEFAULT_N_CTX = 4096


# The server runs as `python -m llama_cpp.server ARGS` via runpy, plus one thing that module cannot do: it watches a
# pipe whose write end only the starting process holds, and exits when that pipe reports EOF. So a Crucible process
# killed with SIGKILL does not leave a model server (1+ GB of memory, busy cores) running behind it.
_SERVER_BOOTSTRAP = """\
import os, runpy, sys, threading
_fd = int(sys.argv.pop(1))
def _exit_with_parent():
    while os.read(_fd, 1):
        pass
    os._exit(0)
threading.Thread(target=_exit_with_parent, daemon=True).start()
runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)
"""

# llama_cpp.server reads its settings from environment variables of the same names (MODEL, PORT, HOST, API_KEY,
# N_CTX, CONFIG_FILE, ...) and PORT/HOST even override the command line; so the server gets an allow-listed
# environment, never the caller's.
_ENV_ALLOW = ("PATH", "HOME", "USER", "LANG", "LANGUAGE", "TZ", "TMPDIR", "PYTHONPATH", "LD_LIBRARY_PATH",
              "VIRTUAL_ENV", "CUDA_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES")
_ENV_ALLOW_PREFIXES = ("LC_", "GGML_", "OMP_")


def _server_env(host: str, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in _ENV_ALLOW or k.startswith(_ENV_ALLOW_PREFIXES)}
    env.update(HOST=host, PORT=str(port), PYTHONUNBUFFERED="1")
    return env


class LocalTeacherServer(ServerProcess):
    """llama-cpp-python's OpenAI-compatible server for one model on 127.0.0.1, as a context manager.

    `start()` assembles the model if needed, starts the server and returns once `GET /v1/models` answers;
    `close()` stops it (SIGTERM, then SIGKILL). The server also exits if this process dies. Waiting, logging and
    stopping are resources/server_process.py's."""

    log_prefix = "teacher"
    not_started = "the local teacher server is not started"

    def __init__(self, model: str | os.PathLike = DEFAULT_MODEL, *, port: int = 0, n_ctx: int = DEFAULT_N_CTX,
                 n_threads: int = 0, home: Path | None = None, host: str = "127.0.0.1",
                 startup_timeout_s: float = 300.0, extra_args: Sequence[str] = (),
                 log_dir: Path | None = None) -> None:
        if n_ctx <= 0:
            raise ValueError(f"n_ctx must be positive, got {n_ctx}")
        self.model_spec = model
        self.n_ctx = int(n_ctx)
        self.n_threads = int(n_threads) or usable_cpus()
        self.home = Home(Path(home)) if home is not None else Home.from_env()
        self.extra_args = list(extra_args)
        super().__init__(port=port, host=host, startup_timeout_s=startup_timeout_s,
                         log_dir=Path(log_dir) if log_dir is not None else self.home.logs)
        self.resolved: ResolvedModel | None = None
        self._lifeline: int | None = None  # write end of the pipe the server watches

    @property
    def model(self) -> str:
        """The model name to send in requests."""
        if self.resolved is None:
            raise TeacherServerError(self.not_started)
        return self.resolved.name

    def describe(self) -> str:
        return f"the llama.cpp server for {self.model!r}"

    def _prepare(self) -> None:
        if importlib.util.find_spec("llama_cpp") is None:
            raise TeacherServerError("llama-cpp-python is not installed (the bundled teacher's server): run "
                                     "`make setup`, or pip install 'crucible[offline]', or set "
                                     "CRUCIBLE_LLM_BASE_URL to an OpenAI-compatible endpoint")
        self.resolved = resolve_model(self.model_spec, self.home.root)

    def _spawn(self, port: int, log: BinaryIO) -> subprocess.Popen:
        assert self.resolved is not None
        args = ["--model", str(self.resolved.path), "--model_alias", self.resolved.name,
                "--host", self.host, "--port", str(port),
                "--n_ctx", str(self.n_ctx), "--n_threads", str(self.n_threads),
                # Off: by default a queued request makes the server end the current *streamed* reply early.
                "--interrupt_requests", "false"]
        if self.resolved.chat_format:
            args += ["--chat_format", self.resolved.chat_format]
        args += self.extra_args
        read_end, self._lifeline = os.pipe()
        try:
            return self._popen([sys.executable, "-c", _SERVER_BOOTSTRAP, str(read_end), *args], log,
                               env=_server_env(self.host, port), pass_fds=(read_end,))
        except BaseException:
            os.close(self._lifeline)
            self._lifeline = None
            raise
        finally:
            os.close(read_end)

    def close(self, timeout_s: float = 10.0) -> None:
        super().close(timeout_s)
        if self._lifeline is not None:
            os.close(self._lifeline)
            self._lifeline = None


def serve_foreground(model: str | os.PathLike = DEFAULT_MODEL, port: int = 8000, n_ctx: int = DEFAULT_N_CTX,
                     n_threads: int = 0, home: Path | None = None, out: TextIO | None = None) -> int:
    """`crucible teacher serve`: run the offline teacher until Ctrl-C (or until the server dies). Exit status."""
    out = out or sys.stdout
    server = LocalTeacherServer(model, port=port, n_ctx=n_ctx, n_threads=n_threads, home=home)
    try:
        print(f"teacher: starting {model} (n_ctx {n_ctx}, {server.n_threads} threads) ...", file=out, flush=True)
        try:
            server.start()
        except LocalTeacherError as exc:
            print(f"teacher: {exc}", file=sys.stderr, flush=True)
            return 1
        print(f"teacher: serving model {server.model!r} at {server.base_url}\n"
              f"  export CRUCIBLE_LLM_BASE_URL={server.base_url} CRUCIBLE_LLM_MODEL={server.model}\n"
              f"  model file {server.resolved.path}\n  log {server.log_path}\n  Ctrl-C stops it", file=out, flush=True)
        code = server.process.wait()
        print(f"teacher: the server exited with code {code}; log {server.log_path}:\n{server.log_tail()}",
              file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        print("teacher: stopped", file=out, flush=True)
        return 0
    finally:
        server.close()


class LocalTeacher(dg.ConfigurableResource):
    """The bundled offline teacher (llama.cpp server on 127.0.0.1) for a run.

    Started on first use (`base_url`, `model_name` or `server()`), stopped in `teardown_after_execution`: a step
    that never asks the teacher, for example a rerun served entirely from the LLM cache, never loads the model (the
    same lazy pattern as `Sandbox.pool()`). Under the multiprocess executor each step process that uses it starts
    its own server."""

    model: str = Field(default=DEFAULT_MODEL,
                       description="A bundled model (qwen2.5-coder-1.5b, qwen2.5-coder-0.5b, smollm2-135m) or the "
                                   "path of a local GGUF file.")
    n_ctx: int = Field(default=DEFAULT_N_CTX, description="Context size in tokens (prompt plus reply).")
    n_threads: int = Field(default=0, description="CPU threads for decoding; 0 means every usable core.")
    port: int = Field(default=0, description="Port on 127.0.0.1; 0 picks a free one.")
    startup_timeout_s: float = Field(default=300.0, description="How long to wait for the server to answer.")
    home: str | None = home_field()  # where the model is assembled and the server logs

    _server: LocalTeacherServer | None = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def server(self) -> LocalTeacherServer:
        """The started server: started on the first call (and again if it died), then the same one."""
        with self._lock:
            if self._server is None or not self._server.running():
                if self._server is not None:
                    self._server.close()
                self._server = LocalTeacherServer(self.model, port=self.port, n_ctx=self.n_ctx,
                                                  n_threads=self.n_threads, startup_timeout_s=self.startup_timeout_s,
                                                  home=Home.from_env(self.home).root)
                self._server.start()
            return self._server

    @property
    def base_url(self) -> str:
        return self.server().base_url

    @property
    def model_name(self) -> str:
        return self.server().model

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        with self._lock:
            if self._server is not None:
                self._server.close()
                self._server = None
