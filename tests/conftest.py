import pytest

from resources.sandbox import Limits, SandboxPool, bwrap_problem


@pytest.fixture
def bundled_teacher_home(tmp_path, monkeypatch):
    """(the bundled teacher's resolved model, a fresh CRUCIBLE_HOME under tmp_path, set in the environment). The model
    is assembled (or found) under the usual home first, so each test does not copy 1.1 GB again."""
    from resources.bundled_models import DEFAULT_MODEL, resolve_model
    from resources.home import Home

    require_bwrap()
    model = resolve_model(DEFAULT_MODEL, Home.from_env().root)
    monkeypatch.setenv("CRUCIBLE_HOME", str(tmp_path / "home"))
    return model, Home.from_env(str(tmp_path / "home"))


def require_bwrap() -> None:
    """bwrap is the default backend and `make setup` installs it: its absence is a failure, not a skip."""
    problem = bwrap_problem()
    if problem:
        pytest.fail(f"bwrap backend unavailable: {problem} (run `make setup` as root)")


@pytest.fixture(scope="module")
def bwrap_pool():
    """One bwrap worker, so a task and the canary after it share the same fork-server."""
    require_bwrap()
    with SandboxPool("bwrap", workers=1, limits=Limits(timeout_s=5, memory_mb=512)) as pool:
        yield pool


@pytest.fixture(scope="module")
def bwrap_pool2():
    require_bwrap()
    with SandboxPool("bwrap", workers=2, limits=Limits(timeout_s=10)) as pool:
        yield pool


@pytest.fixture(scope="session")
def docker_engine():
    """A client of the Docker engine the docker backend uses; the test is skipped, with the reason, when that backend
    cannot run here (no engine, or no crucible-sandbox image: `make sandbox-docker`)."""
    from resources.sandbox_docker import docker_problem

    problem = docker_problem()
    if problem:
        pytest.skip(f"docker backend unavailable: {problem}")
    import docker

    client = docker.from_env()
    yield client
    client.close()


def shared_embedder():
    """The bundled embedder with one vector cache for the whole test session (and the next: the cache is keyed by
    model and text), so tests that build a dataset card embed HumanEval once."""
    import tempfile
    from pathlib import Path

    from resources.embedder import Embedder

    return Embedder(cache_path=str(Path(tempfile.gettempdir()) / "crucible-tests-embedding-cache.sqlite"))
