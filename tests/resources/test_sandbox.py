"""The sandbox's contract: statuses, limits, truncation, bad input, worker restarts, the Dagster resource."""

import threading
import time

import dagster as dg
import pytest

from resources.sandbox import Limits, Sandbox, SandboxPool, SandboxUnavailable, check_backend
from sandbox_image.runner import RUNNER_VERSION


@pytest.mark.parametrize(
    ("code", "status", "exit_code"),
    [
        ("assert sum(range(10)) == 45", "passed", 0),
        ("print('hi')", "passed", 0),
        ("import sys; sys.exit(0)", "passed", 0),
        ("import sys; sys.exit(7)", "failed", 7),
        ("raise SystemExit('bye')", "failed", 1),
        ("assert 1 == 2, 'nope'", "failed", 1),
        ("def f(:\n  pass", "failed", 1),
        ("x = bytearray(4 * 1024 ** 3)", "memory", 1),
        ("while True:\n    pass", "timeout", None),
    ],
)
def test_statuses(bwrap_pool, code, status, exit_code):
    verdict = bwrap_pool.run_one({"id": "t", "code": code, "timeout_s": 2})
    assert verdict.status == status, verdict.stderr
    if exit_code is not None:
        assert verdict.exit_code == exit_code
    assert verdict.backend == "bwrap"
    assert verdict.runner_version == RUNNER_VERSION
    assert verdict.limits["timeout_s"] == 2 and verdict.limits["memory_mb"] == 512


def test_verdict_carries_output_and_script_semantics(bwrap_pool):
    code = (
        "import sys, os\n"
        "print(__name__, sys.argv, os.getcwd(), os.listdir('.'))\n"
        "print('to stderr', file=sys.stderr)\n"
        "class C: pass\n"
        "import pickle; pickle.dumps(C())\n"  # needs a real __main__ module
        "import dataclasses\n@dataclasses.dataclass\nclass D:\n    x: int\nprint(D(1))\n"
    )
    verdict = bwrap_pool.run_one({"id": "io", "code": code})
    assert verdict.status == "passed", verdict.stderr
    assert verdict.stdout.startswith("__main__ ['main.py'] /tmp/task []")
    assert "D(x=1)" in verdict.stdout
    assert verdict.stderr == "to stderr\n"
    assert verdict.wall_ms > 0


def test_traceback_shows_only_the_program(bwrap_pool):
    verdict = bwrap_pool.run_one({"id": "tb", "code": "def f():\n    return 1 / 0\nf()\n"})
    assert verdict.status == "failed"
    assert 'File "main.py", line 2, in f' in verdict.stderr
    assert "ZeroDivisionError" in verdict.stderr
    assert "_execute" not in verdict.stderr and "runner" not in verdict.stderr


def test_output_is_capped_not_failed():
    with SandboxPool("bwrap", 1, Limits(output_bytes=1000)) as pool:
        verdict = pool.run_one({"id": "flood", "code": "import sys\nfor _ in range(10000): print('x' * 100)\n"
                                                      "sys.stderr.write('e' * 5000)"})
    assert verdict.status == "passed"
    assert len(verdict.stdout) == 1000 and verdict.stdout_truncated
    assert len(verdict.stderr) == 1000 and verdict.stderr_truncated


def test_per_program_timeout_overrides_default(bwrap_pool):
    start = time.monotonic()
    verdict = bwrap_pool.run_one({"id": "sleep", "code": "import time; time.sleep(30)", "timeout_s": 0.5})
    assert verdict.status == "timeout"
    assert 450 <= verdict.wall_ms < 3000
    assert time.monotonic() - start < 5


@pytest.mark.parametrize(
    ("program", "reason"),
    [
        ({"id": "x"}, "string 'code'"),
        ({"id": "x", "code": 3}, "string 'code'"),
        ({"id": "x", "code": "pass", "timeout_s": -1}, "timeout_s"),
        ({"id": "x", "code": "pass", "timeout_s": "soon"}, "timeout_s"),
        ("not a dict", "JSON object"),
    ],
)
def test_malformed_programs_are_errors(bwrap_pool, program, reason):
    verdict = bwrap_pool.run_one(program)
    assert verdict.status == "error"
    assert reason in verdict.stderr


def test_batch_keeps_input_order_and_runs_concurrently(bwrap_pool2):
    programs = [{"id": str(i), "code": f"import time; time.sleep(0.3); print({i})"} for i in range(6)]
    start = time.monotonic()
    verdicts = bwrap_pool2.run_batch(programs)
    elapsed = time.monotonic() - start
    assert [v.id for v in verdicts] == [str(i) for i in range(6)]
    assert [v.stdout for v in verdicts] == [f"{i}\n" for i in range(6)]
    assert elapsed < 6 * 0.3  # two workers overlap the sleeps; serial would take 1.8 s


def test_dead_worker_is_reported_and_replaced():
    with SandboxPool("bwrap", 1, Limits(timeout_s=20)) as pool:
        assert pool.run_one({"id": "warm", "code": "pass"}).passed
        worker = pool._all[0]
        threading.Timer(0.5, worker.proc.kill).start()  # the host-side process dies under a running task
        verdict = pool.run_one({"id": "victim", "code": "import time; time.sleep(10)"})
        assert verdict.status == "error"
        assert "worker died" in verdict.stderr
        after = pool.run_one({"id": "next", "code": "print('alive')"})
        assert after.status == "passed" and after.stdout == "alive\n"
        assert pool.restarts == 1


def test_unknown_backend_is_refused_with_a_hint():
    with pytest.raises(SandboxUnavailable, match="choose one of bwrap, docker, unsafe-no-sandbox"):
        check_backend("chroot")


def test_missing_bwrap_gives_install_hint(monkeypatch):
    monkeypatch.setattr("resources.sandbox.bwrap_binary", lambda: None)
    with pytest.raises(SandboxUnavailable, match="apt-get install -y bubblewrap"):
        SandboxPool("bwrap", 1)


@pytest.mark.parametrize("bad", [dict(timeout_s=0), dict(memory_mb=-1), dict(processes=0)])
def test_limits_reject_nonsense(bad):
    with pytest.raises(ValueError):
        Limits(**bad)


def test_resource_in_an_asset(tmp_path):
    @dg.asset
    def sandboxed_sum(sandbox: Sandbox) -> dg.MaterializeResult:
        verdicts = sandbox.run_batch([{"id": "a", "code": "print(2 + 2)"}, {"id": "b", "code": "1/0"}])
        return dg.MaterializeResult(metadata={"statuses": ",".join(v.status for v in verdicts),
                                              "out": verdicts[0].stdout})

    result = dg.materialize([sandboxed_sum], resources={"sandbox": Sandbox(workers=1)},
                            instance=dg.DagsterInstance.ephemeral())
    assert result.success
    mat = result.asset_materializations_for_node("sandboxed_sum")[0]
    assert mat.metadata["statuses"].value == "passed,failed"
    assert mat.metadata["out"].value == "4\n"
