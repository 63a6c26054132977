"""The Docker sandbox backend, for real: a Docker engine and the crucible-sandbox image are needed (`make
sandbox-docker`); without them every engine test is skipped with docker_problem()'s reason."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from resources.sandbox import Limits, SandboxPool, SandboxUnavailable
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

REPO = Path(__file__).resolve().parents[2]
LIMITS = Limits(timeout_s=5.0, memory_mb=256, processes=32)


@pytest.fixture(scope="module")
def engine():
    problem = docker_problem()
    if problem:
        pytest.skip(f"docker backend unavailable: {problem}")
    import docker

    client = docker.from_env()
    yield client
    client.close()


@pytest.fixture(scope="module")
def pool(engine):
    with SandboxPool(backend="docker", workers=2, limits=LIMITS) as p:
        yield p


def run(pool: SandboxPool, code: str, **kw):
    return pool.run_one({"id": uuid.uuid4().hex[:8], "code": textwrap.dedent(code), **kw})


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
def test_docker_problem_reports_a_missing_image(engine):
    assert docker_problem() is None
    problem = docker_problem("crucible-sandbox:no-such-version")
    assert problem == ("image crucible-sandbox:no-such-version not found: run `make sandbox-docker` "
                       "(or bash sandbox_image/build.sh)")


@pytest.mark.docker
def test_container_is_locked_down_as_configured(engine):
    limits = LIMITS.as_dict()
    worker = DockerWorker(0, limits, tmpfs_mb=32)
    worker.start()
    try:
        assert worker.hello["ready"] and worker.hello["pid"] == 1 and worker.hello["uid"] == DOCKER_UID_BASE
        assert worker.hello["version"] == RUNNER_VERSION
        attrs = engine.api.inspect_container(worker.container.id)
        host, config = attrs["HostConfig"], attrs["Config"]
        assert host["NetworkMode"] == "none"
        assert host["ReadonlyRootfs"] is True
        assert host["CapDrop"] == ["ALL"] and not host["CapAdd"]
        assert host["SecurityOpt"] == ["no-new-privileges"]
        assert host["Privileged"] is False
        assert host["Memory"] == host["MemorySwap"] == (256 + 32 + SERVER_HEADROOM_MB) * 1024 * 1024
        assert host["PidsLimit"] == 32 + 8
        assert host["Tmpfs"] == {"/tmp": "size=32m,mode=1777"}
        assert host["AutoRemove"] is True and host["LogConfig"]["Type"] == "none"
        assert config["User"] == f"{DOCKER_UID_BASE}:{DOCKER_UID_BASE}" and config["Image"] == default_image()
        assert config["OpenStdin"] and config["StdinOnce"] and not config["Tty"]
        assert config["Labels"][LABEL] == RUNNER_VERSION
        assert attrs["State"]["Running"] and attrs["State"]["Pid"] > 0
    finally:
        container_id = worker.container.id
        worker.close()
    assert not worker.alive
    assert _wait_gone(engine, container_id), "close() must remove the container"


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
def test_many_processes_together_are_capped_by_the_container_memory_limit(pool):
    # Each child stays under its own 256 MiB address-space rlimit; six of them (1.1 GiB) do not fit in the
    # container's 448 MiB, so the kernel's OOM killer (the container's memory cgroup) must stop some.
    v = run(pool, """
        import os, signal, time
        kids = []
        for _ in range(6):
            pid = os.fork()
            if pid == 0:
                block = bytearray(180 * 1024 * 1024)
                for i in range(0, len(block), 4096):
                    block[i] = 1
                time.sleep(2)
                os._exit(0)
            kids.append(pid)
        killed = 0
        for pid in kids:
            _, status = os.waitpid(pid, 0)
            killed += os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        print("killed", killed)
    """, timeout_s=20)
    assert v.status == "passed", v.stderr
    assert int(v.stdout.split()[1]) >= 1
    assert run(pool, "print('ok')").stdout == "ok\n"


@pytest.mark.docker
def test_no_network(pool):
    # A real listener on the host's loopback, reachable from here, must be unreachable from the sandbox.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        v = run(pool, f"""
            import errno, socket
            print("interfaces", sorted(name for _, name in socket.if_nameindex()))
            with open("/proc/net/route") as f:
                print("routes", len(f.read().splitlines()) - 1)
            try:
                socket.create_connection(("127.0.0.1", {port}), timeout=2)
                print("loopback connected")
            except OSError as exc:
                print("loopback", errno.errorcode[exc.errno])
            try:
                socket.getaddrinfo("example.com", 80)
                print("dns resolved")
            except socket.gaierror:
                print("dns failed")
        """)
    finally:
        listener.close()
    assert v.status == "passed", v.stderr
    assert v.stdout.splitlines() == ["interfaces ['lo']", "routes 0", "loopback ECONNREFUSED", "dns failed"]


@pytest.mark.docker
def test_host_filesystem_is_not_writable(pool):
    v = run(pool, """
        import errno, os
        for target in ["/x", "/opt/x", "/opt/crucible/runner.py", "/etc/passwd", "/usr/lib/x", "/var/x", "/root/x"]:
            try:
                with open(target, "a") as f:
                    f.write("pwned")
                print(target, "WRITTEN")
            except OSError as exc:
                print(target, errno.errorcode[exc.errno])
        root = [line.split() for line in open("/proc/mounts") if line.split()[1] == "/"][0]
        print("root-options", root[3].split(",")[0])
        print("host-repo-visible", os.path.exists(%r))
    """ % str(REPO))
    assert v.status == "passed", v.stderr
    lines = v.stdout.splitlines()
    assert not any(line.endswith("WRITTEN") for line in lines), v.stdout
    assert all(line.split()[1] in ("EROFS", "EACCES") for line in lines[:7]), v.stdout
    assert "/opt/x EROFS" in lines  # read-only root, not just permissions
    assert lines[7:] == ["root-options ro", "host-repo-visible False"]


@pytest.mark.docker
def test_runs_as_its_own_non_root_uid_without_privileges(pool):
    v = run(pool, """
        import os
        print(os.getuid(), os.geteuid(), os.getgid(), os.getegid())
        status = dict(line.split(":", 1) for line in open("/proc/self/status"))
        print(status["CapEff"].strip(), status["CapBnd"].strip(), status["NoNewPrivs"].strip())
        try:
            os.setuid(0)
            print("became root")
        except PermissionError:
            print("setuid refused")
    """)
    assert v.status == "passed", v.stderr
    ids, caps, setuid = v.stdout.splitlines()
    uid = int(ids.split()[0])
    assert ids == f"{uid} {uid} {uid} {uid}" and uid in (DOCKER_UID_BASE, DOCKER_UID_BASE + 1)
    assert (caps, setuid) == ("0000000000000000 0000000000000000 1", "setuid refused")


@pytest.mark.docker
def test_tmp_does_not_leak_between_tasks(pool):
    whoami = "open('/proc/self/cgroup').read().split('docker/')[-1].strip()[:12]"
    writer = f"""
        import os
        for path in ["/tmp/secret.txt", "leftover-in-cwd.txt"]:
            with open(path, "w") as f:
                f.write("secret")
        os.makedirs("/tmp/d/e", exist_ok=True)
        os.chmod("/tmp/d", 0o500)  # a read-only directory must not stop the wipe
        print({whoami})
    """
    reader = f"""
        import os
        print({whoami})
        print(sorted(os.listdir("/tmp")), sorted(os.listdir(".")), os.getcwd())
    """
    writers = [run(pool, writer) for _ in range(2)]
    readers = [run(pool, reader) for _ in range(2)]
    assert all(v.status == "passed" for v in writers + readers), [v.stderr for v in writers + readers]
    written_in = {v.stdout.strip() for v in writers}
    for v in readers:
        container, listing = v.stdout.splitlines()
        assert container in written_in  # this worker ran a writer before
        assert listing == "['task'] [] /tmp/task"


@pytest.mark.docker
def test_fork_bomb_is_contained_and_the_worker_keeps_serving(pool):
    v = run(pool, """
        import os, errno
        pids = []
        try:
            for _ in range(1000):
                pid = os.fork()
                if pid == 0:
                    import time
                    time.sleep(60)
                    os._exit(0)
                pids.append(pid)
            print(len(pids), "no limit")
        except OSError as exc:
            print(len(pids), errno.errorcode[exc.errno])
    """)
    assert v.status == "passed", v.stderr
    count, reason = v.stdout.split()
    assert 0 < int(count) <= LIMITS.processes and reason == "EAGAIN"

    start = time.monotonic()
    v = run(pool, """
        import os
        while True:
            try:
                os.fork()
            except OSError:
                pass
    """, timeout_s=2.0)
    assert v.status == "timeout" and time.monotonic() - start < 15
    # Everything the bomb left is gone: both workers serve, and can fork again.
    after = pool.run_batch([{"id": str(i), "code": "import subprocess, sys\n"
                                                    "subprocess.run([sys.executable, '-c', 'pass'], check=True)\n"
                                                    "print('ok')"} for i in range(4)])
    assert [x.stdout for x in after] == ["ok\n"] * 4, [x.stderr for x in after]


@pytest.mark.docker
def test_program_that_kills_its_parent(pool):
    # SIGKILL/SIGTERM from inside to PID 1 (the runner, the task's parent) are dropped by the kernel: the task runs on.
    for sig in ("SIGKILL", "SIGTERM"):
        v = run(pool, f"""
            import os, signal, time
            os.kill(os.getppid(), signal.{sig})
            os.kill(1, signal.{sig})
            time.sleep(0.2)
            print(os.getppid(), "still here")
        """)
        assert v.status == "passed" and v.stdout == "1 still here\n", v.stderr
    # SIGINT, whose Python default is a handler (KeyboardInterrupt), is ignored by the runner too: same worker.
    restarts = pool.restarts
    v = run(pool, "import os, signal, time\nos.kill(1, signal.SIGINT)\ntime.sleep(0.2)\nprint('still here')")
    assert v.status == "passed" and v.stdout == "still here\n", v.stderr
    after = pool.run_batch([{"id": str(i), "code": "print('alive')"} for i in range(4)])
    assert [x.status for x in after] == ["passed"] * 4
    assert pool.restarts == restarts


@pytest.mark.docker
def test_run_raises_worker_died_when_the_container_goes_away(engine):
    worker = DockerWorker(1, LIMITS.as_dict())
    worker.start()
    try:
        task = {**LIMITS.as_dict(), "id": "a", "code": "print('hi')"}
        assert worker.run(task, 30)["stdout"] == "hi\n"
        engine.api.kill(worker.container.id)
        with pytest.raises(WorkerDied, match="docker worker 1"):
            worker.run(task, 30)
        assert not worker.alive
    finally:
        worker.close()


@pytest.mark.docker
def test_container_dies_with_the_process_that_started_it(engine):
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
        assert engine.containers.get(container_id).status == "running"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert _wait_gone(engine, container_id), "a container outlived the process that started it"


@pytest.mark.docker
def test_pool_close_removes_its_containers(engine):
    before = {c.id for c in _our_containers(engine)}
    with SandboxPool(backend="docker", workers=2, limits=LIMITS) as p:
        verdicts = p.run_batch([{"id": str(i), "code": f"print({i} * {i})"} for i in range(6)])
        assert [v.stdout for v in verdicts] == [f"{i * i}\n" for i in range(6)]
        ours = {c.id for c in _our_containers(engine)} - before
        assert len(ours) == 2
    assert all(_wait_gone(engine, i) for i in ours)
