"""The server of a bundled model (resources/bundled_models.py) or any local GGUF file on 127.0.0.1: llama.cpp's own
`llama-server` with parallel slots where `make setup` has built it (resources/llama_server_build.py), else
llama-cpp-python's OpenAI-compatible server, which answers one request at a time.

    with LocalTeacherServer("qwen2.5-coder-1.5b") as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="local")
        client.chat.completions.create(model=server.model, messages=[...], temperature=0)
        server.slots                                       # requests it decodes at once (1 for the Python server)

`LocalTeacher` is the same server as a Dagster resource, started on first use; `crucible teacher serve` runs it in the
foreground (`serve_foreground`). The teacher endpoint sends a bundled server `slots` requests at a time
(resources/teacher_endpoint.py). CRUCIBLE_TEACHER_ENGINE=python|llama-server picks the server (default: auto, the
batching one when it is installed); CRUCIBLE_TEACHER_SLOTS sets llama-server's parallel slots.
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

DEFAULT_N_CTX = 4096  # per slot
ENGINES = ("auto", "llama-server", "python")
DEFAULT_ENGINE = os.environ.get("CRUCIBLE_TEACHER_ENGINE") or "auto"
# Requests llama-server decodes together unless CRUCIBLE_TEACHER_SLOTS says otherwise: benchmarks/README.md ("The
# offline teacher's parallel slots") has aggregate tokens/s at 1, 2 and 4.
DEFAULT_SLOTS = 4  # 1.67x the tokens/s of one at a time on 2 cores; 2 slots: 1.39x


def default_slots() -> int:
    text = os.environ.get("CRUCIBLE_TEACHER_SLOTS", "").strip()
    if not text:
        return DEFAULT_SLOTS
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"CRUCIBLE_TEACHER_SLOTS must be a whole number >= 1, got {text!r}")
    return int(text)


def llama_server_binary() -> Path | None:
    """llama.cpp's server: $CRUCIBLE_LLAMA_SERVER, else the one `make setup` built into this venv; None if neither."""
    configured = os.environ.get("CRUCIBLE_LLAMA_SERVER")
    path = Path(configured).expanduser() if configured else Path(sys.prefix) / "bin" / "llama-server"
    return path if os.access(path, os.X_OK) else None


def engine_slots(engine: str | None = None, slots: int = 0) -> int:
    """Sequences a server of `engine` (default DEFAULT_ENGINE) decodes at once: 1 for the Python server, else `slots`
    or the default (CRUCIBLE_TEACHER_SLOTS, else DEFAULT_SLOTS)."""
    return 1 if resolve_engine(engine or DEFAULT_ENGINE) == "python" else (int(slots) or default_slots())


def resolve_engine(engine: str) -> str:
    """"auto" becomes llama-server where it is installed and python elsewhere; a named engine must be usable."""
    if engine not in ENGINES:
        raise ValueError(f"teacher engine must be one of {', '.join(ENGINES)}, got {engine!r} (the default comes "
                         "from CRUCIBLE_TEACHER_ENGINE when it is set)")
    if engine == "auto":
        return "llama-server" if llama_server_binary() else "python"
    if engine == "llama-server" and llama_server_binary() is None:
        raise TeacherServerError("llama-server is not installed: run `make setup` (it builds it, "
                                 "resources/llama_server_build.py), set CRUCIBLE_LLAMA_SERVER to its path, or use "
                                 "the engine 'python'")
    return engine


# The server runs under a small Python bootstrap that does one thing neither server can: it watches a pipe whose
# write end only the starting process holds, and exits when that pipe reports EOF. So a Crucible process killed with
# SIGKILL does not leave a model server (1+ GB of memory, busy cores) running behind it. The Python server runs inside
# the bootstrap (`python -m llama_cpp.server ARGS` via runpy); llama-server (`--exec BINARY ARGS`) as its child, which
# the bootstrap kills on EOF. A pipe rather than the parent-death signal, which follows the starting *thread*.
_SERVER_BOOTSTRAP = """\
import os, runpy, signal, subprocess, sys, threading
_fd = int(sys.argv.pop(1))
_child = []
def _exit_with_parent():
    while os.read(_fd, 1):
        pass
    for child in _child:
        child.kill()
    os._exit(0)
threading.Thread(target=_exit_with_parent, daemon=True).start()
if sys.argv[1:2] == ["--exec"]:
    # close() signals the whole process group: the child stops on its own SIGTERM and the bootstrap waits for it
    # (a handler, not SIG_IGN, which the child would inherit).
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    _child.append(subprocess.Popen(sys.argv[2:]))
    sys.exit(_child[0].wait())
runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)
"""

# llama_cpp.server reads its settings from environment variables of the same names (MODEL, PORT, HOST, API_KEY,
# N_CTX, CONFIG_FILE, ...) and PORT/HOST even override the command line, llama-server from LLAMA_ARG_* and
# LLAMA_API_KEY; so either server gets an allow-listed environment, never the caller's.
_ENV_ALLOW = ("PATH", "HOME", "USER", "LANG", "LANGUAGE", "TZ", "TMPDIR", "PYTHONPATH", "LD_LIBRARY_PATH",
              "VIRTUAL_ENV", "CUDA_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES")
_ENV_ALLOW_PREFIXES = ("LC_", "GGML_", "OMP_")


def _server_env(host: str, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in _ENV_ALLOW or k.startswith(_ENV_ALLOW_PREFIXES)}
    env.update(HOST=host, PORT=str(port), PYTHONUNBUFFERED="1")
    return env


class LocalTeacherServer(ServerProcess):
    """A llama.cpp server for one model on 127.0.0.1, as a context manager: llama-server with `slots` parallel
    sequences, or llama-cpp-python's server with one (`engine`, see the module docstring).

    `start()` assembles the model if needed, starts the server and returns once `GET /v1/models` answers;
    `close()` stops it (SIGTERM, then SIGKILL). The server also exits if this process dies. Waiting, logging and
    stopping are resources/server_process.py's. `n_ctx` is each sequence's context; `extra_args` go to the chosen
    engine's command line as they are."""

    log_prefix = "teacher"
    not_started = "the local teacher server is not started"

    def __init__(self, model: str | os.PathLike = DEFAULT_MODEL, *, port: int = 0, n_ctx: int = DEFAULT_N_CTX,
                 n_threads: int = 0, home: Path | None = None, host: str = "127.0.0.1",
                 startup_timeout_s: float = 300.0, extra_args: Sequence[str] = (),
                 log_dir: Path | None = None, engine: str | None = None, slots: int = 0) -> None:
        if n_ctx <= 0:
            raise ValueError(f"n_ctx must be positive, got {n_ctx}")
        if slots < 0:
            raise ValueError(f"slots must be >= 0 (0: the engine's default), got {slots}")
        self.model_spec = model
        self.n_ctx = int(n_ctx)
        self.n_threads = int(n_threads) or usable_cpus()
        self.home = Home(Path(home)) if home is not None else Home.from_env()
        self.extra_args = list(extra_args)
        self.engine = resolve_engine(engine or DEFAULT_ENGINE)
        self.slots = engine_slots(self.engine, slots)
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
        return f"the llama.cpp server ({self.engine}) for {self.model!r}"

    def _prepare(self) -> None:
        if self.engine == "python" and importlib.util.find_spec("llama_cpp") is None:
            raise TeacherServerError("llama-cpp-python is not installed (the bundled teacher's server): run "
                                     "`make setup`, or pip install 'crucible[offline]', or set "
                                     "CRUCIBLE_LLM_BASE_URL to an OpenAI-compatible endpoint")
        self.resolved = resolve_model(self.model_spec, self.home.root)

    def _python_server_args(self, port: int) -> list[str]:
        assert self.resolved is not None
        args = ["--model", str(self.resolved.path), "--model_alias", self.resolved.name,
                "--host", self.host, "--port", str(port),
                "--n_ctx", str(self.n_ctx), "--n_threads", str(self.n_threads),
                # Off: by default a queued request makes the server end the current *streamed* reply early.
                "--interrupt_requests", "false"]
        if self.resolved.chat_format:
            args += ["--chat_format", self.resolved.chat_format]
        return args

    def _llama_server_args(self, port: int) -> list[str]:
        assert self.resolved is not None
        if self.resolved.chat_format:
            raise TeacherServerError(f"{self.resolved.name} names the chat format {self.resolved.chat_format!r}, "
                                     "which only the Python server knows: use the engine 'python'")
        binary = llama_server_binary()
        if binary is None:
            raise TeacherServerError("llama-server is no longer installed: run `make setup` or use the engine "
                                     "'python'")
        # The context is shared out among the slots: each gets n_ctx. Continuous batching is llama-server's default.
        return ["--exec", str(binary), "--model", str(self.resolved.path), "--alias", self.resolved.name,
                "--host", self.host, "--port", str(port), "--ctx-size", str(self.n_ctx * self.slots),
                "--parallel", str(self.slots), "--threads", str(self.n_threads), "--jinja"]

    def _spawn(self, port: int, log: BinaryIO) -> subprocess.Popen:
        args = self._python_server_args(port) if self.engine == "python" else self._llama_server_args(port)
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
                     n_threads: int = 0, home: Path | None = None, out: TextIO | None = None,
                     engine: str | None = None, slots: int = 0) -> int:
    """`crucible teacher serve`: run the offline teacher until Ctrl-C (or until the server dies). Exit status."""
    out = out or sys.stdout
    try:
        server = LocalTeacherServer(model, port=port, n_ctx=n_ctx, n_threads=n_threads, home=home, engine=engine,
                                    slots=slots)
    except (ValueError, LocalTeacherError) as exc:
        print(f"teacher: {exc}", file=sys.stderr, flush=True)
        return 1
    try:
        print(f"teacher: starting {model} with {server.engine} ({server.slots} slot(s) of n_ctx {n_ctx}, "
              f"{server.n_threads} threads) ...", file=out, flush=True)
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
    n_ctx: int = Field(default=DEFAULT_N_CTX, description="Context size in tokens (prompt plus reply) per sequence.")
    n_threads: int = Field(default=0, description="CPU threads for decoding; 0 means every usable core.")
    engine: str | None = Field(default=None, description="llama-server (parallel slots), python (llama-cpp-python's "
                                                         "server, one request at a time) or auto (llama-server where "
                                                         "installed); default $CRUCIBLE_TEACHER_ENGINE, else auto.")
    slots: int = Field(default=0, description="llama-server's parallel sequences; 0 means $CRUCIBLE_TEACHER_SLOTS, "
                                              "else 4.")
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
                                                  home=Home.from_env(self.home).root, engine=self.engine,
                                                  slots=self.slots)
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
