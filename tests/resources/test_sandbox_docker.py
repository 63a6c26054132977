"""The Docker sandbox backend, for real: configuration, container lifecycle and the verdict contract. A Docker engine
and the crucible-sandbox image are needed (`make sandbox-docker`); without them every engine test is skipped with
docker_problem()'s reason. Hostile programs against the same backend: test_sandbox_docker_hostile.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from resources.sandbox import SandboxPool, SandboxUnavailable
from resources.sandbox_docker import (
    DOCKER_UID_BASE,
    LABEL,
    SERVER_HEADROOM_MB,
    DockerWorker,
    _FrameDemux,
    default_image,
    docker_problem,
)
from resources.sandbox_workers import WorkerDied
from sandbox_image.runner import RUNNER_VERSION
from tests.resources.conftest import LIMITS, REPO, run


def _our_containers(client) -> list:
    return client.containers.list(all=True, filters={"label": [f"org.crucible.host-pid={os.getpid()}"]})


def _wait_gone(client, container_id: str, within_s: float = 15.0) -> bool:
    import docker

    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            client.containers.get(container_id)
        except docker.errors.NotFound:
            return True
        time.sleep(0.2)
    return False


# -- no engine needed ------------------------------------------------------------------------------------------------
def test_frame_demux_splits_streams_across_chunk_boundaries():
    frames = b"".join(bytes([s, 0, 0, 0]) + len(p).to_bytes(4, "big") + p
                      for s, p in [(1, b'{"a": 1}\n'), (2, b"warning\n"), (1, b""), (1, b'{"b": 2}\n')])
    demux, got = _FrameDemux(), []
    for i in range(0, len(frames), 3):  # worst case: headers and payloads split everywhere
        got += demux.feed(frames[i:i + 3])
    assert got == [(1, b'{"a": 1}\n'), (2, b"warning\n"), (1, b""), (1, b'{"b": 2}\n')]
    with pytest.raises(ValueError):
        _FrameDemux().feed(b'{"not": "framed"}\n')


def test_docker_problem_names_the_fix_when_no_engine_answers(monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-such-docker.sock")
    problem = docker_problem()
    assert problem is not None and problem.startswith("no Docker engine reachable")
    assert "make sandbox-docker" in problem and "\n" not in problem
    with pytest.raises(SandboxUnavailable, match="docker backend.*make sandbox-docker"):
        SandboxPool(backend="docker", workers=1)


def test_default_image_is_versioned_by_the_runner():
    assert default_image() == f"crucible-sandbox:{RUNNER_VERSION}"


# -- engine and image needed -----------------------------------------------------------------------------------------
@pytest.mark.docker
def test_docker_problem_reports_a_missing_image(docker_engine):
    assert docker_problem() is None
    problem = docker_problem("crucible-sandbox:no-such-version")
    assert problem == ("image crucible-sandbox:no-such-version not found: run `make sandbox-docker` "
                       "(or bash sandbox_image/build.sh)")


@pytest.mark.docker
def test_container_is_locked_down_as_configured(docker_engine):
    limits = LIMITS.as_dict()
    worker = DockerWorker(0, limits, tmpfs_mb=32)
    worker.start()
    try:
        assert worker.hello["ready"] and worker.hello["pid"] == 1 and worker.hello["uid"] == DOCKER_UID_BASE
        assert worker.hello["version"] == RUNNER_VERSION
        attrs = docker_engine.api.inspect_container(worker.container.id)
        host, config = attrs["HostConfig"], attrs["Config"]
        assert host["NetworkMode"] == "none"
        assert host["ReadonlyRootfs"] is True
        assert host["CapDrop"] == ["ALL"] and not host["CapAdd"]
        assert host["SecurityOpt"] == ["no-new-privileges"]
        assert host["Privileged"] is False
        assert host["Memory"] == host["MemorySwap"] == (256 + 32 + SERVER_HEADROOM_MB) * 1024 * 1024
        assert host["PidsLimit"] == 32 + 8
        assert host["Tmpfs"] == {"/tmp": "size=32m,mode=1777,exec"}
        assert host["AutoRemove"] is True and host["LogConfig"]["Type"] == "none"
        assert config["User"] == f"{DOCKER_UID_BASE}:{DOCKER_UID_BASE}" and config["Image"] == default_image()
        assert config["OpenStdin"] and config["StdinOnce"] and not config["Tty"]
        assert config["Labels"][LABEL] == RUNNER_VERSION
        assert attrs["State"]["Running"] and attrs["State"]["Pid"] > 0
    finally:
        container_id = worker.container.id
        worker.close()
    assert not worker.alive
    assert _wait_gone(docker_engine, container_id), "close() must remove the container"


@pytest.mark.docker
def test_passing_program(pool):
    v = run(pool, """
        import numpy, sortedcontainers
        def add(a, b):
            return a + b
        assert add(2, 3) == 5
        print("sum", int(numpy.arange(5).sum()))
    """)
    assert v.status == "passed", v.stderr
    assert v.exit_code == 0 and v.stdout == "sum 10\n" and v.stderr == ""
    assert v.backend == "docker" and v.runner_version == RUNNER_VERSION and v.wall_ms > 0


@pytest.mark.docker
def test_failing_program_reports_its_stderr(pool):
    v = run(pool, """
        import sys
        print("before")
        print("to stderr", file=sys.stderr)
        assert 1 + 1 == 3, "arithmetic is broken"
    """)
    assert v.status == "failed" and v.exit_code == 1
    assert v.stdout == "before\n"
    assert "to stderr" in v.stderr
    assert "AssertionError: arithmetic is broken" in v.stderr and 'File "main.py"' in v.stderr
    v = run(pool, "raise SystemExit(3)")
    assert v.status == "failed" and v.exit_code == 3


@pytest.mark.docker
def test_large_output_is_capped_and_survives_the_stream_framing(pool):
    # A ~240 KB verdict line (64 KiB per stream, JSON-escaped): several Docker frames, reassembled into one line.
    v = run(pool, """
        import sys
        sys.stdout.write("x" * 300000)
        sys.stderr.write("\\u00e9\\n" * 100000)
    """)
    assert v.status == "passed", v.stderr[-500:]
    assert v.stdout == "x" * LIMITS.output_bytes and v.stdout_truncated
    assert v.stderr.startswith("\u00e9\n") and v.stderr_truncated
    assert run(pool, "print('ok')").stdout == "ok\n"


@pytest.mark.docker
def test_timeout(pool):
    start = time.monotonic()
    v = run(pool, "while True:\n    pass\n", timeout_s=1.0)
    took = time.monotonic() - start
    assert v.status == "timeout"
    assert 1000 <= v.wall_ms < 3000 and took < 10
    assert run(pool, "print('ok')").status == "passed"


@pytest.mark.docker
def test_memory_bomb_is_reported_as_memory(pool):
    v = run(pool, "x = bytearray(2 * 1024 ** 3)")
    assert v.status == "memory" and "MemoryError" in v.stderr
    v = run(pool, """
        chunks = []
        while True:
            chunks.append(bytearray(16 * 1024 * 1024))
    """)
    assert v.status == "memory"
    assert run(pool, "print('ok')").stdout == "ok\n"


@pytest.mark.docker
def test_run_raises_worker_died_when_the_container_goes_away(docker_engine):
    worker = DockerWorker(1, LIMITS.as_dict())
    worker.start()
    try:
        task = {**LIMITS.as_dict(), "id": "a", "code": "print('hi')"}
        assert worker.run(task, 30)["stdout"] == "hi\n"
        docker_engine.api.kill(worker.container.id)
        with pytest.raises(WorkerDied, match="docker worker 1"):
            worker.run(task, 30)
        assert not worker.alive
    finally:
        worker.close()


@pytest.mark.docker
def test_container_dies_with_the_process_that_started_it(docker_engine):
    script = textwrap.dedent("""
        import sys, time
        from resources.sandbox import Limits
        from resources.sandbox_docker import DockerWorker
        worker = DockerWorker(0, Limits().as_dict())
        worker.start()
        print(worker.container.id, flush=True)
        time.sleep(120)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        container_id = proc.stdout.readline().strip()
        assert docker_engine.containers.get(container_id).status == "running"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert _wait_gone(docker_engine, container_id), "a container outlived the process that started it"


@pytest.mark.docker
def test_pool_close_removes_its_containers(docker_engine):
    before = {c.id for c in _our_containers(docker_engine)}
    with SandboxPool(backend="docker", workers=2, limits=LIMITS) as p:
        verdicts = p.run_batch([{"id": str(i), "code": f"print({i} * {i})"} for i in range(6)])
        assert [v.stdout for v in verdicts] == [f"{i * i}\n" for i in range(6)]
        ours = {c.id for c in _our_containers(docker_engine)} - before
        assert len(ours) == 2
    assert all(_wait_gone(docker_engine, i) for i in ours)

