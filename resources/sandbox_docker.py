"""Docker backend: one long-lived, locked-down container per worker, whose main process (PID 1) is the runner.

    worker = DockerWorker(0, Limits().as_dict())      # image crucible-sandbox:<RUNNER_VERSION>
    worker.start(); worker.run({"id": "a", "code": "print(1)", ...}, deadline_s=40); worker.close()

The container has no network (`network_mode="none"`), a read-only root, a size-capped tmpfs on /tmp (the runner's
scratch, wiped after every task), every capability dropped, no-new-privileges, a memory cap (the task's own limit +
the tmpfs + room for the server) and a pids cap (the task's process limit + a few for the server), and runs as a
non-root uid of its own (62000 + worker index).
Being PID 1 of the container's PID namespace is what lets the runner kill everything a task leaves behind, and what
makes it immune to SIGKILL from inside (the kernel drops it for a namespace's init).

Transport: we attach to the container's stdin/stdout/stderr through the Engine API (`attach_socket`, before starting
the container so the runner's hello line cannot be missed) and demultiplex Docker's 8-byte stream frames ourselves;
the JSON line protocol on top is `RunnerChannel`, shared with the pipe-based workers. docker-py's own readers
(`frames_iter`, `demux_adaptor`) block without a deadline, which a sandbox host cannot afford.

The container is started with StdinOnce and auto-remove: when our end of the attach connection closes for any reason
(close(), or this process dying, even by SIGKILL), the engine closes the runner's stdin, the runner's read loop ends,
the container exits and the engine removes it. That is the Docker counterpart of bwrap's --die-with-parent.
"""

from __future__ import annotations

import os
import select
import socket
import struct
import uuid

from resources.sandbox_workers import RunnerChannel, WorkerDied, runner_source
from sandbox_image.runner import RUNNER_VERSION

IMAGE_REPOSITORY = "crucible-sandbox"
# One uid per worker, distinct from bwrap's host uids: Docker does not remap uids, so the per-task RLIMIT_NPROC
# counts every process of that uid on the host; a shared uid would let one worker's tasks starve another's.
DOCKER_UID_BASE = 62000
SERVER_HEADROOM_MB = 128  # the runner itself and the kernel's per-container overhead, beyond the task and the tmpfs
SHM_MB = 16  # /dev/shm: enough for multiprocessing's semaphores and small shared buffers
SERVER_PIDS = 8  # the runner and the processes it briefly holds between tasks, beyond the task's own limit
LABEL = "org.crucible.sandbox"  # on every worker container: its value is the runner version
HOW_TO_FIX = "run `make sandbox-docker`"

_HEADER = struct.Struct(">BxxxL")  # stream (0 stdin, 1 stdout, 2 stderr), 3 zero bytes, payload length
_STDERR_KEEP = 4096


def default_image() -> str:
    return f"{IMAGE_REPOSITORY}:{RUNNER_VERSION}"


def _engine_address() -> str:
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 160 else text[:157] + "..."


def docker_problem(image: str | None = None) -> str | None:
    """None when the docker backend can run code here (engine answers, image present), else a one-line fix."""
    image = image or default_image()
    try:
        import docker
    except ImportError:
        return "the `docker` Python package is not installed: pip install docker (it is one of Crucible's dependencies)"
    try:
        client = docker.from_env(timeout=10)
    except docker.errors.DockerException as exc:
        return (f"no Docker engine reachable at {_engine_address()} ({_short(exc)}): start dockerd or "
                f"{HOW_TO_FIX}")
    try:
        client.ping()
        client.images.get(image)
    except docker.errors.ImageNotFound:
        return f"image {image} not found: {HOW_TO_FIX} (or bash sandbox_image/build.sh)"
    except (docker.errors.DockerException, OSError) as exc:  # requests' errors are OSErrors
        return (f"the Docker engine at {_engine_address()} does not answer ({_short(exc)}): start dockerd or "
                f"{HOW_TO_FIX}")
    finally:
        client.close()
    return None


class _FrameDemux:
    """Splits Docker's multiplexed attach stream (tty off) into (stream, payload) frames, across arbitrary chunks."""

    def __init__(self) -> None:
        self._pending = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self._pending += data
        frames = []
        while len(self._pending) >= _HEADER.size:
            stream, size = _HEADER.unpack_from(self._pending)
            if stream not in (0, 1, 2):
                raise ValueError(f"not a Docker stream frame (header {bytes(self._pending[:8])!r})")
            end = _HEADER.size + size
            if len(self._pending) < end:
                break
            frames.append((stream, bytes(self._pending[_HEADER.size:end])))
            del self._pending[:end]
        return frames


class DockerWorker(RunnerChannel):
    """The runner as PID 1 of a locked-down container, reached over the Engine API's attach stream."""

    backend = "docker"

    def __init__(self, index: int, limits: dict, image: str | None = None, tmpfs_mb: int = 64,
                 startup_timeout_s: float = 60.0, api_timeout_s: float = 30.0) -> None:
        super().__init__(index, limits, startup_timeout_s)
        self.image = image or default_image()
        self.uid = DOCKER_UID_BASE + index
        self.tmpfs_mb = int(tmpfs_mb)
        self.api_timeout_s = api_timeout_s
        self.container = None  # docker.models.containers.Container once created
        self._client = None
        self._sock = None  # what attach_socket returned (keeps the HTTP response alive)
        self._raw: socket.socket | None = None  # the connection itself
        self._demux = _FrameDemux()
        self._stdout = bytearray()  # stdout already demultiplexed but not yet handed to the protocol
        self._stderr = bytearray()  # the last bytes the runner wrote to stderr, for error messages
        self._eof = False

    # -- configuration -------------------------------------------------------------------------------------------
    def memory_bytes(self) -> int:
        return (int(self.limits["memory_mb"]) + self.tmpfs_mb + SERVER_HEADROOM_MB) * 1024 * 1024

    def container_config(self) -> dict:
        """Keyword arguments for `client.containers.create`."""
        import docker

        memory = self.memory_bytes()
        return dict(
            image=self.image,
            # The host's runner source, not the image's /opt/crucible/runner.py: the runner that runs is always the
            # one this checkout was tested with (an image built before a runner change, without a version bump,
            # cannot serve a stale protocol), it works unchanged against a remote engine, and it is what BwrapWorker
            # does. The image's copy is for running it by hand (`docker run -i --rm IMAGE`).
            command=["python3", "-I", "-c", runner_source()],
            name=f"crucible-sandbox-{os.getpid()}-{self.index}-{uuid.uuid4().hex[:8]}",
            labels={LABEL: RUNNER_VERSION, "org.crucible.host-pid": str(os.getpid())},
            user=f"{self.uid}:{self.uid}",
            hostname="sandbox",
            working_dir="/tmp",
            environment={"HOME": "/tmp", "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"},
            # stdin_open with detach=False (create's default) also sets StdinOnce and the Attach* flags.
            stdin_open=True,
            tty=False,
            init=False,  # the runner must be PID 1 (its namespace sweep and SIGKILL immunity depend on it)
            network_mode="none",
            read_only=True,
            # Docker adds noexec,nosuid,nodev to tmpfs mounts by default; size and mode are ours, and `exec`: a compiled
            # program runs from the task's directory (noexec would buy nothing: any Python program can already run
            # arbitrary code). nosuid and nodev stay.
            tmpfs={"/tmp": f"size={self.tmpfs_mb}m,mode=1777,exec"},
            mem_limit=memory,
            memswap_limit=memory,  # no swap on top
            pids_limit=int(self.limits["processes"]) + SERVER_PIDS,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            # A private IPC namespace with a small /dev/shm: multiprocessing's locks and queues need it (ipc_mode
            # "none" removes /dev/shm and breaks them, while SysV IPC would still persist). Its pages count against
            # mem_limit. Like bwrap's /dev/shm, the runner does not wipe it between tasks (only /tmp).
            ipc_mode="private",
            shm_size=SHM_MB * 1024 * 1024,
            # Verdicts travel over the attach stream; a logging driver would only keep a second, on-disk copy of
            # every untrusted program's output.
            log_config=docker.types.LogConfig(type=docker.types.LogConfig.types.NONE),
            auto_remove=True,
        )

    # -- lifecycle -----------------------------------------------------------------------------------------------
    def start(self) -> None:
        import docker

        try:
            self._client = docker.from_env(timeout=self.api_timeout_s)
            self.container = self._client.containers.create(**self.container_config())
            self._sock = self._client.api.attach_socket(
                self.container.id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
            self._raw = getattr(self._sock, "_sock", self._sock)
            self.container.start()
        except docker.errors.ImageNotFound as exc:
            self.close()
            raise WorkerDied(f"docker worker {self.index}: image {self.image} not found: {HOW_TO_FIX}") from exc
        except (docker.errors.DockerException, OSError) as exc:
            self.close()
            raise WorkerDied(f"docker worker {self.index} could not start: {_short(exc)}") from exc
        try:
            self._await_hello()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        raw, sock, container, client = self._raw, self._sock, self.container, self._client
        self._raw = self._sock = self.container = self._client = None
        self._eof = True
        if raw is not None:
            try:
                raw.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                raw.close()
            except OSError:
                pass
        if sock is not None and sock is not raw:
            try:
                sock.close()
            except OSError:
                pass
        if container is not None and client is not None:
            try:
                # Kill and remove now; the engine's auto-remove may be doing the same, which is fine.
                client.api.remove_container(container.id, force=True)
            except Exception:  # noqa: BLE001 - already gone (404) or being removed (409)
                pass
        if client is not None:
            try:
                client.close()
            except Exception:  # noqa: BLE001
                pass

    @property
    def alive(self) -> bool:
        if self.container is None or self._eof:
            return False
        # Between tasks, take in whatever is waiting (an EOF means the container has gone) without blocking.
        if self._lock.acquire(blocking=False):
            try:
                self._pump(0)
            finally:
                self._lock.release()
        return not self._eof

    # -- transport -----------------------------------------------------------------------------------------------
    def _send(self, data: bytes) -> None:
        if self._raw is None:
            raise BrokenPipeError("attach connection closed")
        self._raw.sendall(data)

    def _recv(self, timeout: float) -> bytes | None:
        if not self._stdout and not self._eof:
            self._pump(timeout)
        if self._stdout:
            out = bytes(self._stdout)
            self._stdout.clear()
            return out
        return b"" if self._eof else None

    def _pump(self, timeout: float) -> None:
        """Read what the connection has within `timeout` and sort it into stdout / stderr; set _eof at its end."""
        raw = self._raw
        if raw is None:
            self._eof = True
            return
        pending = getattr(raw, "pending", None)  # TLS: bytes already decrypted do not show up in select()
        if not (pending and pending()):
            try:
                ready, _, _ = select.select([raw], [], [], timeout)
            except (OSError, ValueError):
                self._eof = True
                return
            if not ready:
                return
        try:
            data = raw.recv(1 << 20)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._eof = True
            return
        try:
            frames = self._demux.feed(data)
        except ValueError as exc:
            self._stderr += f"\n[crucible] {exc}".encode()
            self._eof = True
            return
        for stream, payload in frames:
            if stream == 1:
                self._stdout += payload
            elif stream == 2:
                self._stderr = (self._stderr + payload)[-_STDERR_KEEP:]

    def _diagnostics(self) -> str:
        parts = []
        err = self._stderr[-500:].decode(errors="replace").strip()
        if err:
            parts.append(err)
        container = self.container
        if container is not None:
            try:
                container.reload()
                state = container.attrs.get("State", {})
                if not state.get("Running", True):
                    parts.append(f"container exited with {state.get('ExitCode')}"
                                 + (" (OOM-killed)" if state.get("OOMKilled") else ""))
            except Exception:  # noqa: BLE001 - already removed: what the runner said is all we have
                pass
        return f": {'; '.join(parts)}" if parts else ""
