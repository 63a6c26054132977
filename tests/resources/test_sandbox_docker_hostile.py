"""Hostile programs against the Docker sandbox backend: memory, network, the host's files, privileges, /tmp between
tasks, fork bombs, signals to the runner. Each is contained and the same containers serve the next task. Needs a
Docker engine and the crucible-sandbox image (`make sandbox-docker`); skipped otherwise, with docker_problem()'s
reason. The bwrap backend's counterpart is test_sandbox_hostile.py."""

from __future__ import annotations

import socket
import time

import pytest

from resources.sandbox_docker import DOCKER_UID_BASE
from tests.resources.conftest import LIMITS, REPO, run


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

