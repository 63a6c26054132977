"""The Docker backend's tests share one engine-backed pool (module scope) and these helpers."""

from __future__ import annotations

import textwrap
import uuid
from pathlib import Path

import pytest

from resources.sandbox import Limits, SandboxPool

REPO = Path(__file__).resolve().parents[2]
LIMITS = Limits(timeout_s=5.0, memory_mb=256, processes=32)


@pytest.fixture(scope="module")
def pool(docker_engine):
    with SandboxPool(backend="docker", workers=2, limits=LIMITS) as p:
        yield p


def run(pool: SandboxPool, code: str, **kw):
    return pool.run_one({"id": uuid.uuid4().hex[:8], "code": textwrap.dedent(code), **kw})
