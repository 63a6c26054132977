"""Hostile programs against the bwrap backend: each has no effect on the host, gets the right status, and the same
fork-server serves the next task afterwards with a clean /tmp and no leftover processes."""

import os
import socket
import threading
import uuid
from pathlib import Path

import pytest

from resources.sandbox import Limits, SandboxPool

# Runs after every hostile program, on the same (single) worker: the namespace holds only the runner (PID 1) and this
# task, /tmp holds only the fresh task directory, and the directory is empty.
CANARY = (
    "import os\n"
    "pids = sorted(int(p) for p in os.listdir('/proc') if p.isdigit())\n"
    "print(pids == [1, os.getpid()], os.listdir('/tmp'), os.listdir('.'))\n"
)
CANARY_OK = "True ['task'] []\n"


def run_then_canary(pool, code, timeout_s=5):
    verdict = pool.run_one({"id": "hostile", "code": code, "timeout_s": timeout_s})
    canary = pool.run_one({"id": "canary", "code": CANARY})
    assert canary.status == "passed", canary.stderr
    assert canary.stdout == CANARY_OK
    return verdict


def test_host_files_cannot_be_read(bwrap_pool, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("hunter2")
    repo_file = Path(__file__).resolve()
    code = (
        "import os\n"
        f"for path in [{str(secret)!r}, {str(repo_file)!r}, '/etc/shadow', '/root/.bashrc', '/proc/1/root/etc/shadow',"
        " '/var/run/docker.sock', '/run/docker.sock']:\n"
        "    try:\n"
        "        print(path, open(path).read()[:20])\n"
        "    except OSError as exc:\n"
        "        print(path, 'blocked', type(exc).__name__)\n"
    )
    verdict = run_then_canary(bwrap_pool, code)
    assert verdict.status == "passed"
    assert "hunter2" not in verdict.stdout
    assert verdict.stdout.count("blocked") == 7


def test_host_files_cannot_be_written(bwrap_pool, tmp_path):
    marker = f"crucible-pwned-{uuid.uuid4().hex}"
    targets = [tmp_path / marker, Path("/usr/lib") / marker, Path("/etc") / marker, Path.cwd() / marker]
    code = (
        "import os\n"
        f"for path in {[str(t) for t in targets]!r}:\n"
        "    try:\n"
        "        open(path, 'w').write('x')\n"
        "        print('wrote', path)\n"
        "    except OSError as exc:\n"
        "        print('blocked', type(exc).__name__)\n"
    )
    verdict = run_then_canary(bwrap_pool, code)
    assert verdict.stdout.count("blocked") == len(targets), verdict.stdout
    assert not any(t.exists() for t in targets)


def test_loopback_network_is_unreachable(bwrap_pool):
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(3)
    port = server.getsockname()[1]
    connections = []

    def accept():
        try:
            connections.append(server.accept())
        except OSError:
            pass

    thread = threading.Thread(target=accept)
    thread.start()
    code = (
        "import socket\n"
        f"socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
    )
    verdict = run_then_canary(bwrap_pool, code)
    thread.join()
    server.close()
    assert verdict.status == "failed"
    assert "Error" in verdict.stderr
    assert connections == []


def test_subprocess_and_shell_stay_inside(bwrap_pool, tmp_path):
    marker = tmp_path / f"shell-{uuid.uuid4().hex}"
    code = (
        "import subprocess\n"
        f"out = subprocess.run(['sh', '-c', 'id -u; echo hi > {marker} || echo blocked; ls /home /root 2>&1 | wc -l'],"
        " capture_output=True, text=True)\n"
        "print(out.stdout)\n"
    )
    verdict = run_then_canary(bwrap_pool, code)
    assert verdict.status == "passed", verdict.stderr
    assert verdict.stdout.startswith("1000\n")
    assert "blocked" in verdict.stdout
    assert not marker.exists()


def test_setsid_daemon_does_not_outlive_its_task(bwrap_pool):
    code = (
        "import os, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        while True:\n"
        "            time.sleep(0.01)\n"
        "    os._exit(0)\n"
        "os.wait()\n"
        "print('parent done')\n"
    )
    verdict = run_then_canary(bwrap_pool, code)  # the canary asserts no process but PID 1 and itself is left
    assert verdict.status == "passed"
    assert verdict.stdout == "parent done\n"
    assert verdict.wall_ms < 2000


def test_fork_bomb_is_contained(bwrap_pool):
    code = "import os\nwhile True:\n    os.fork()\n"
    verdict = run_then_canary(bwrap_pool, code, timeout_s=3)
    assert verdict.status in ("failed", "timeout")
    assert verdict.status == "timeout" or "BlockingIOError" in verdict.stderr


def test_memory_bomb_single_allocation(bwrap_pool):
    verdict = run_then_canary(bwrap_pool, "x = bytearray(16 * 1024 ** 3)")
    assert verdict.status == "memory"


def test_memory_bomb_gradual(bwrap_pool):
    verdict = run_then_canary(bwrap_pool, "chunks = []\nwhile True:\n    chunks.append(bytearray(50 * 1024 ** 2))\n")
    assert verdict.status == "memory"


def test_many_processes_allocating_hit_the_worker_cap():
    # Each child stays under its own 1 GiB address-space limit; together they pass the worker's cgroup cap.
    code = (
        "import os, time\n"
        "kids = []\n"
        "for _ in range(8):\n"
        "    pid = os.fork()\n"
        "    if pid == 0:\n"
        "        block = b'\\x01' * (300 * 1024 ** 2)  # touched pages, not just reserved\n"
        "        time.sleep(3)\n"
        "        os._exit(0)\n"
        "    kids.append(pid)\n"
        "codes = [os.waitpid(k, 0)[1] for k in kids]\n"
        "print(codes)\n"
        "assert all(c == 0 for c in codes)\n"
    )
    with SandboxPool("bwrap", 1, Limits(timeout_s=15, memory_mb=1024)) as pool:
        verdict = run_then_canary(pool, code, timeout_s=15)
        cgroup = pool._all[0].cgroup
        if cgroup.kind == "none":
            pytest.skip(f"no cgroup here ({cgroup.reason}); per-task rlimits only")
        assert verdict.status in ("failed", "memory"), verdict.stdout
        assert cgroup.memory_events() > 0


def test_disk_fill_is_capped_and_wiped(bwrap_pool):
    code = (
        "import os\n"
        "chunk = b'x' * (1024 * 1024)\n"
        "n = 0\n"
        "try:\n"
        "    for i in range(10000):\n"
        "        with open(f'fill{i}', 'wb') as f:\n"
        "            f.write(chunk * 8)\n"
        "        n += 8\n"
        "finally:\n"
        "    print(n)\n"
    )
    verdict = run_then_canary(bwrap_pool, code)
    assert verdict.status == "failed"
    assert "No space left on device" in verdict.stderr
    assert int(verdict.stdout) <= 64


def test_single_huge_file_hits_the_file_size_limit(bwrap_pool):
    code = "open('big', 'wb').write(b'x' * (40 * 1024 * 1024))\n"
    verdict = run_then_canary(bwrap_pool, code)
    assert verdict.status == "failed"
    assert "File too large" in verdict.stderr


@pytest.mark.parametrize("code", ["while True:\n    pass\n", "import time\ntime.sleep(3600)\n",
                                  "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                                  "while True:\n    time.sleep(1)\n"])
def test_busy_loops_and_sleeps_time_out(bwrap_pool, code):
    verdict = run_then_canary(bwrap_pool, code, timeout_s=1)
    assert verdict.status == "timeout"
    assert 900 <= verdict.wall_ms < 3000


@pytest.mark.parametrize("code", [
    "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nprint('still here')\n",
    "import os, signal\nos.kill(1, signal.SIGTERM)\nos.kill(1, signal.SIGSEGV)\nprint('still here')\n",
    "import os, signal, time\nos.kill(1, signal.SIGINT)\ntime.sleep(0.2)\nprint('still here')\n",
    "import os\nos.system('kill -9 -1')\nprint('still here')\n",
])
def test_killing_the_parent_does_not_kill_the_server(bwrap_pool, code):
    restarts = bwrap_pool.restarts
    verdict = run_then_canary(bwrap_pool, code)
    assert bwrap_pool.restarts == restarts  # the same fork-server served the canary
    assert verdict.status in ("passed", "memory", "failed")  # `kill -9 -1` takes the task down with everything else
    if "system" not in verdict.id and verdict.status == "passed":
        assert verdict.stdout == "still here\n"


def test_server_memory_is_not_readable(bwrap_pool):
    code = (
        "try:\n"
        "    open('/proc/1/mem', 'rb').read(1)\n"
        "    print('read')\n"
        "except OSError as exc:\n"
        "    print('blocked', type(exc).__name__)\n"
    )
    verdict = run_then_canary(bwrap_pool, code)
    assert verdict.stdout.startswith("blocked")


def test_tmp_does_not_leak_between_tasks(bwrap_pool):
    code = (
        "import os\n"
        "open('/tmp/left-behind', 'w').write('secret')\n"
        "open('in-workdir', 'w').write('secret')\n"
        "os.makedirs('/tmp/locked/deeper')\n"
        "open('/tmp/locked/deeper/f', 'w').write('x')\n"
        "os.chmod('/tmp/locked/deeper', 0)\n"
        "os.chmod('/tmp/locked', 0)\n"
    )
    verdict = run_then_canary(bwrap_pool, code)  # the canary asserts /tmp holds only an empty task dir
    assert verdict.status == "passed", verdict.stderr


def test_shared_memory_and_sysv_ipc_do_not_leak_between_tasks(bwrap_pool):
    code = (
        "import ctypes\n"
        "from multiprocessing import shared_memory\n"
        "from multiprocessing.resource_tracker import unregister\n"
        "block = shared_memory.SharedMemory(name='crucible-leak', create=True, size=4096)\n"
        "block.buf[:6] = b'secret'\n"
        "unregister(block._name, 'shared_memory')  # leave it behind on purpose\n"
        "libc = ctypes.CDLL(None)\n"
        "IPC_CREAT = 0o1000\n"
        "print(libc.shmget(4242, 4096, IPC_CREAT | 0o600) >= 0, libc.msgget(4243, IPC_CREAT | 0o600) >= 0,\n"
        "      libc.semget(4244, 1, IPC_CREAT | 0o600) >= 0)\n"
    )
    verdict = run_then_canary(bwrap_pool, code)
    assert verdict.stdout == "True True True\n", verdict.stderr
    check = (
        "import os\n"
        "print(os.listdir('/dev/shm'),\n"
        "      [len(open(f'/proc/sysvipc/{k}').read().splitlines()) - 1 for k in ('shm', 'msg', 'sem')])\n"
    )
    after = bwrap_pool.run_one({"id": "after", "code": check})
    assert after.stdout == "[] [0, 0, 0]\n", after.stderr


def test_environment_does_not_leak(bwrap_pool, monkeypatch):
    monkeypatch.setenv("CRUCIBLE_TEST_SECRET", "s3cr3t")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-should-not-leak")
    verdict = run_then_canary(bwrap_pool, "import os\nprint(sorted(os.environ))\n")
    assert verdict.status == "passed"
    assert "s3cr3t" not in verdict.stdout and "OPENAI" not in verdict.stdout
    assert verdict.stdout == "['HOME', 'LANG', 'PATH', 'PWD', 'PYTHONDONTWRITEBYTECODE']\n"


def test_runs_as_non_root_with_no_capabilities(bwrap_pool):
    code = (
        "import os\n"
        "status = open('/proc/self/status').read()\n"
        "caps = [l.split()[1] for l in status.splitlines() if l.startswith(('CapEff', 'CapPrm'))]\n"
        "print(os.getuid(), os.getgid(), caps)\n"
    )
    verdict = run_then_canary(bwrap_pool, code)
    assert verdict.stdout == "1000 1000 ['0000000000000000', '0000000000000000']\n"


@pytest.mark.skipif(os.geteuid() != 0, reason="host uid switching happens only when Crucible runs as root")
def test_worker_runs_as_a_non_root_host_uid(bwrap_pool):
    bwrap_pool.run_one({"id": "warm", "code": "pass"})
    proc = bwrap_pool._all[0].proc
    status = Path(f"/proc/{proc.pid}/status").read_text()
    uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
    assert all(int(u) >= 61000 for u in uid_line.split()[1:])
