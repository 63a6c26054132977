"""The sandbox as a Dagster resource: `Sandbox` configures a pool of workers (resources/sandbox_pool.py) and
`Sandbox.runner()` puts the verdict cache (resources/verdict_cache.py) in front of it, which is how Crucible runs
programs. Nothing in Crucible executes generated code any other way.

The pool's names are re-exported here, so `from resources.sandbox import Limits, Sandbox` keeps working; code that must
start fast (the `crucible sandbox run` command) imports resources.sandbox_pool directly, which loads no Dagster.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import dagster as dg
from pydantic import Field, PrivateAttr

from resources.home import Home, home_field
from resources.sandbox_pool import (
    BACKENDS,
    PROGRAM_LIMITS,
    STATUSES,
    UNSAFE_BACKEND,
    Limits,
    SandboxPool,
    SandboxUnavailable,
    Verdict,
    bwrap_problem,
    check_backend,
    error_verdict,
    program_problem,
)
from sandbox_image.limits import DEFAULT_MEMORY_MB, DEFAULT_OUTPUT_BYTES, DEFAULT_PROCESSES, DEFAULT_TIMEOUT_S

if TYPE_CHECKING:
    from resources.verdict_cache import CachedRunner

__all__ = ["BACKENDS", "PROGRAM_LIMITS", "STATUSES", "UNSAFE_BACKEND", "Limits", "Sandbox", "SandboxPool",
           "SandboxUnavailable", "Verdict", "bwrap_problem", "check_backend", "error_verdict", "program_problem"]


class Sandbox(dg.ConfigurableResource):
    """Runs generated code in isolation (bubblewrap fork-servers by default, Docker containers by choice)."""

    backend: str = Field(default="bwrap", description="bwrap (default), docker, or unsafe-no-sandbox "
                                                      "(trusted code only: no isolation at all)")
    workers: int = Field(default=2, description="Concurrent sandbox workers (one fork-server each).")
    home: str | None = home_field()  # where the verdict cache lives
    timeout_s: float = Field(default=DEFAULT_TIMEOUT_S, description="Wall-clock limit per program, seconds (a "
                                                                     "program's own timeout_s overrides it).")
    memory_mb: int = Field(default=DEFAULT_MEMORY_MB, description="Address-space limit per program, MiB.")
    output_bytes: int = Field(default=DEFAULT_OUTPUT_BYTES, description="Captured stdout/stderr cap per stream, "
                                                                        "bytes.")
    processes: int = Field(default=DEFAULT_PROCESSES, description="Process cap per worker (fork bombs stop here).")
    python: str = Field(default="/usr/bin/python3", description="Interpreter inside the bwrap sandbox.")
    docker_image: str | None = Field(default=None, description="Image for the docker backend "
                                                               "(default crucible-sandbox:<runner version>).")

    _pool: SandboxPool | None = PrivateAttr(default=None)

    def limits(self) -> Limits:
        return Limits(timeout_s=self.timeout_s, memory_mb=self.memory_mb, output_bytes=self.output_bytes,
                      processes=self.processes)

    def pool(self) -> SandboxPool:
        if self._pool is None:
            self._pool = SandboxPool(self.backend, self.workers, self.limits(), python=self.python,
                                     docker_image=self.docker_image)
        return self._pool

    def runner(self) -> CachedRunner:
        """The pool behind the verdict cache: how assets run programs (repeats are answered from the cache)."""
        from resources.verdict_cache import CachedRunner

        return CachedRunner(self.pool(), self.verdict_cache())

    def verdict_cache(self):
        """The verdict cache under this resource's home."""
        from resources.verdict_cache import VerdictCache

        return VerdictCache(home=Home.from_env(self.home))

    def close(self) -> None:
        """Stop the pool's workers, if it was started (outside a run: callers that used `pool()` directly)."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        self.close()
