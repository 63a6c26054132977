"""Per-worker memory and process caps through Linux cgroups (v1 or v2), best effort.

A sandbox worker is one long-lived process tree; capping the whole tree (not only each task through rlimits) is what
stops many processes that each stay under their own limit from taking the machine down together. We write the
cgroup files directly: the two or three files involved do not justify a dependency, and the maintained libraries for
this target systemd units rather than plain cgroup directories.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def _own_paths() -> dict[str, str]:
    """Controller name -> this process's cgroup path, from /proc/self/cgroup ('' key for the v2 unified tree)."""
    paths: dict[str, str] = {}
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return paths
    for line in lines:
        _, controllers, path = line.split(":", 2)
        for name in controllers.split(",") if controllers else [""]:
            paths[name] = path
    return paths


@dataclass
class WorkerCgroup:
    """The cgroup directories one worker lives in. `kind` is 'v1', 'v2' or 'none' (caps not available here)."""

    kind: str
    dirs: list[Path] = field(default_factory=list)
    reason: str = ""

    def join(self) -> None:
        """Move the calling process into the cgroup: call in the child between fork and exec."""
        for d in self.dirs:
            (d / "cgroup.procs").write_text(str(os.getpid()))

    def memory_events(self) -> int:
        """How many processes the memory cap's OOM killer has killed (v1 memory.oom_control, v2 memory.events)."""
        for d in self.dirs:
            for name in ("memory.oom_control", "memory.events"):
                f = d / name
                if f.exists():
                    for line in f.read_text().splitlines():
                        key, _, value = line.partition(" ")
                        if key == "oom_kill":
                            return int(value)
        return 0

    def remove(self) -> None:
        # A killed worker's processes can take a moment to leave the cgroup; rmdir fails (EBUSY) until they have.
        for d in self.dirs:
            for _ in range(50):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.01)


def create_worker_cgroup(name: str, memory_bytes: int, max_pids: int) -> WorkerCgroup:
    """Make a cgroup capping memory and process count for one worker; 'none' with the reason when we cannot."""
    if os.geteuid() != 0:
        return WorkerCgroup("none", reason="not root: relying on per-task rlimits and a non-root uid")
    own = _own_paths()
    unique = f"crucible-{name}-{uuid.uuid4().hex[:8]}"
    v1 = {ctrl: CGROUP_ROOT / ctrl for ctrl in ("memory", "pids") if (CGROUP_ROOT / ctrl / "cgroup.procs").exists()}
    dirs: list[Path] = []
    try:
        if len(v1) == 2:
            for ctrl, base in v1.items():
                d = base / own.get(ctrl, "/").lstrip("/") / unique
                d.mkdir(parents=True)
                dirs.append(d)
            mem, pids = dirs
            (mem / "memory.limit_in_bytes").write_text(str(memory_bytes))
            swap = mem / "memory.memsw.limit_in_bytes"
            if swap.exists():
                swap.write_text(str(memory_bytes))
            (pids / "pids.max").write_text(str(max_pids))
            return WorkerCgroup("v1", dirs)
        unified = CGROUP_ROOT if (CGROUP_ROOT / "cgroup.controllers").exists() else CGROUP_ROOT / "unified"
        parent = unified / own.get("", "/").lstrip("/")
        controllers = (parent / "cgroup.subtree_control").read_text().split()
        if not {"memory", "pids"} <= set(controllers):
            (parent / "cgroup.subtree_control").write_text("+memory +pids")
        d = parent / unique
        d.mkdir()
        dirs.append(d)
        (d / "memory.max").write_text(str(memory_bytes))
        if (d / "memory.swap.max").exists():
            (d / "memory.swap.max").write_text("0")
        (d / "pids.max").write_text(str(max_pids))
        return WorkerCgroup("v2", [d])
    except OSError as exc:
        WorkerCgroup("none", dirs).remove()
        return WorkerCgroup("none", reason=f"cgroups unavailable ({exc}); relying on per-task rlimits")
