"""The hostile-program tests of test_sandbox_hostile.py, in every other language the sandbox runs (the programs are
in hostile_programs.py), on both backends: no effect on the host, the right status, and the same fork-server serves a
clean next task (the canary: no process but the runner, an empty /tmp). The Docker half runs where the engine and the
image are (`make sandbox-docker`) and is skipped with the reason elsewhere."""

import socket
import threading
import uuid

import pytest

from resources.sandbox import Limits, SandboxPool
from sandbox_image.languages import LANGUAGES
from tests.resources.hostile_programs import HOSTILE
from tests.resources.test_sandbox_hostile import CANARY, CANARY_OK

pytestmark = pytest.mark.slow

# A generous wall clock: compiling is part of each run, and Go's `net` package is compiled from source here.
TIMEOUT_S = 30.0


def _cases(kind):
    return [pytest.param(language, id=language) for language in HOSTILE if kind in HOSTILE[language]]


@pytest.fixture(scope="module", params=["bwrap", pytest.param("docker", marks=pytest.mark.docker)])
def pool(request):
    """One worker of each backend (the Docker image carries the same toolchains), so the canary after a program
    meets whatever that program left in the same fork-server."""
    if request.param == "docker":
        request.getfixturevalue("docker_engine")  # skips, with the reason, where the engine or image is missing
    else:
        from tests.conftest import require_bwrap

        require_bwrap()
        missing = [lang.missing() for name, lang in LANGUAGES.items() if name in HOSTILE and lang.missing()]
        if missing:
            pytest.fail(f"toolchains missing (run `make toolchains`): {'; '.join(missing)}")
    with SandboxPool(request.param, workers=1, limits=Limits(timeout_s=TIMEOUT_S, memory_mb=512)) as p:
        yield p


def run(pool, language, kind, timeout_s=TIMEOUT_S, **fill):
    code = HOSTILE[language][kind]
    for key, value in fill.items():
        code = code.replace("{" + key + "}", str(value))
    verdict = pool.run_one({"id": f"{language}-{kind}", "code": code, "language": language, "timeout_s": timeout_s})
    assert verdict.language == language
    canary = pool.run_one({"id": "canary", "code": CANARY})
    assert canary.status == "passed", canary.stderr
    assert canary.stdout == CANARY_OK, f"{language} {kind} left something behind: {canary.stdout}"
    return verdict


@pytest.mark.parametrize("language", _cases("network"))
def test_network_is_unreachable(pool, language):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.settimeout(0.2)
    connections = []
    stop = threading.Event()

    def accept():
        while not stop.is_set():
            try:
                connections.append(listener.accept())
            except OSError:
                pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        verdict = run(pool, language, "network", port=listener.getsockname()[1])
    finally:
        stop.set()
        thread.join()
        listener.close()
    assert verdict.status == "passed", verdict.stderr
    assert verdict.stdout.strip() == "blocked"
    assert connections == []


@pytest.mark.parametrize("language", _cases("fork_bomb"))
def test_fork_bomb_is_contained(pool, language):
    restarts = pool.restarts
    verdict = run(pool, language, "fork_bomb", timeout_s=8)
    assert verdict.status in ("failed", "timeout", "memory"), verdict.stderr
    assert pool.restarts == restarts  # the same fork-server went on serving


@pytest.mark.parametrize("language", _cases("memory"))
def test_memory_bomb_is_a_memory_verdict(pool, language):
    verdict = run(pool, language, "memory")
    assert verdict.status == "memory", (verdict.status, verdict.exit_code, verdict.stderr[-500:])


@pytest.mark.parametrize("language", _cases("disk"))
def test_disk_fill_is_capped_and_wiped(pool, language):
    verdict = run(pool, language, "disk")
    assert verdict.status == "failed", verdict.stderr
    assert int(verdict.stdout.split()[-1]) <= 64


@pytest.mark.parametrize("language", _cases("outside"))
def test_writes_outside_tmp_are_blocked(pool, language, tmp_path):
    marker = tmp_path / f"pwned-{uuid.uuid4().hex[:6]}"
    verdict = run(pool, language, "outside", marker=marker)
    assert verdict.status == "passed", verdict.stderr
    assert verdict.stdout.split() == ["blocked"] * 4
    assert not marker.exists()


@pytest.mark.parametrize("language", _cases("daemon"))
def test_background_process_does_not_outlive_its_task(pool, language):
    verdict = run(pool, language, "daemon")  # the canary asserts that nothing but the runner is left
    assert verdict.status == "passed", verdict.stderr
    assert verdict.stdout == "parent done\n"
    # The server did not wait for the background process: the run step ended long before its 60 s sleep.
    assert verdict.wall_ms - (verdict.compile_ms or 0.0) < 10_000
