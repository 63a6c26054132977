"""The sandbox's contract: statuses, limits, truncation, bad input, worker restarts, the Dagster resource, and the
cached runner in front of it (per-program limits, cache keys, errors never cached)."""

import threading
import time

import dagster as dg
import pytest

from resources.sandbox import Limits, Sandbox, SandboxPool, SandboxUnavailable, check_backend, error_verdict
from resources.verdict_cache import CachedRunner, VerdictCache, verdict_key
from sandbox_image.limits import DEFAULTS
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
        ({"id": "x", "code": "pass", "memory_mb": 0}, "memory_mb"),
        ({"id": "x", "code": "pass", "memory_mb": "lots"}, "memory_mb"),
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
    monkeypatch.setattr("resources.sandbox_pool.bwrap_binary", lambda: None)
    with pytest.raises(SandboxUnavailable, match="apt-get install -y bubblewrap"):
        SandboxPool("bwrap", 1)


@pytest.mark.parametrize("bad", [dict(timeout_s=0), dict(memory_mb=-1), dict(processes=0)])
def test_limits_reject_nonsense(bad):
    with pytest.raises(ValueError):
        Limits(**bad)


def test_programs_see_a_plain_interpreter(bwrap_pool):
    """The runner's own modules (bundled into one script by sandbox_image/bundle.py) are not left in sys.modules."""
    verdict = bwrap_pool.run_one({"id": "m", "code": "import sys\n"
                                                    "print(sorted(m for m in sys.modules if 'sandbox' in m))"})
    assert verdict.status == "passed" and verdict.stdout == "[]\n", verdict.stderr


def test_defaults_are_declared_once():
    import cli

    assert Limits().as_dict() == DEFAULTS == Sandbox().limits().as_dict()
    args = cli.build_parser().parse_args(["sandbox", "run", "--input", "x.jsonl"])
    assert (args.timeout, args.memory_mb) == (DEFAULTS["timeout_s"], DEFAULTS["memory_mb"])
    args = cli.build_parser().parse_args(["eval", "score", "--benchmark", "humaneval", "--samples", "x.jsonl"])
    assert (args.timeout, args.memory_mb) == (DEFAULTS["timeout_s"], DEFAULTS["memory_mb"])


def test_resource_in_an_asset(tmp_path, monkeypatch):
    monkeypatch.setenv("CRUCIBLE_HOME", str(tmp_path))

    @dg.asset
    def sandboxed_sum(sandbox: Sandbox) -> dg.MaterializeResult:
        verdicts = sandbox.runner().run([{"id": "a", "code": "print(2 + 2)"}, {"id": "b", "code": "1/0"}])
        return dg.MaterializeResult(metadata={"statuses": ",".join(v.status for v in verdicts),
                                              "out": verdicts[0].stdout})

    result = dg.materialize([sandboxed_sum], resources={"sandbox": Sandbox(workers=1)},
                            instance=dg.DagsterInstance.ephemeral())
    assert result.success
    mat = result.asset_materializations_for_node("sandboxed_sum")[0]
    assert mat.metadata["statuses"].value == "passed,failed"
    assert mat.metadata["out"].value == "4\n"
    assert (tmp_path / "cache" / "verdicts.sqlite").is_file()  # the resource's runner caches under the home


# -- the cached runner (resources/verdict_cache.py) -------------------------------------------------------------------
SLEEP = "import time\ntime.sleep(3)\nprint('woke')"


@pytest.fixture()
def runner(bwrap_pool, tmp_path):
    return CachedRunner(bwrap_pool, VerdictCache(tmp_path / "verdicts.sqlite"))


def test_runner_honours_a_programs_own_timeout(runner):
    assert runner.pool.limits.timeout_s == 5  # the pool's default: the sleep fits in it
    start = time.monotonic()
    short, default = runner.run([{"id": "short", "code": SLEEP, "timeout_s": 1}, {"id": "default", "code": SLEEP}])
    assert short.status == "timeout" and short.limits["timeout_s"] == 1 and short.wall_ms < 2500
    assert default.status == "passed" and default.stdout == "woke\n" and default.limits["timeout_s"] == 5
    assert time.monotonic() - start < 10
    # Cached under their own keys: the second run answers both, each with its own verdict.
    again = runner.run([{"id": "default2", "code": SLEEP}, {"id": "short2", "code": SLEEP, "timeout_s": 1}])
    assert [(v.id, v.status) for v in again] == [("default2", "passed"), ("short2", "timeout")]
    assert (runner.executed, runner.cached) == (2, 2)


def test_a_programs_own_limit_is_in_the_key_only_when_it_sets_one(tmp_path):
    pool = SandboxPool("bwrap", 1, Limits())  # no worker starts until a program runs
    runner = CachedRunner(pool, VerdictCache(tmp_path / "verdicts.sqlite"))
    code = "print(1)"
    # The key of a program that sets no limits of its own, pinned: only a new runner version (1.1.0: languages) may
    # change it.
    assert runner.key({"id": "a", "code": code}) == verdict_key(code, "bwrap", Limits().as_dict(), RUNNER_VERSION) \
        == "ed066f67c4cac9632e1b78580ec33a7911f6f12ffc6bf67ca430b395985db872"
    assert runner.key({"id": "a", "code": code, "salt": "rerun", "timeout_s": None}) \
        == "2fd567eab29aee52d37dbc5dd5fe6ae865df26e913c1205f6d7761e7c70da8bc"
    own = {**Limits().as_dict(), "timeout_s": 1, "memory_mb": 256}
    assert runner.key({"id": "a", "code": code, "timeout_s": 1, "memory_mb": 256}) \
        == verdict_key(code, "bwrap", own, RUNNER_VERSION)
    assert len({runner.key({"code": code, **extra}) for extra in
                ({}, {"timeout_s": 1}, {"memory_mb": 256}, {"timeout_s": 1, "memory_mb": 256})}) == 4
    pool.close()


def test_runner_runs_each_distinct_program_once_and_keeps_ids(runner):
    programs = [{"id": "a", "code": "print('x')"}, {"id": "b", "code": "print('x')"},
                {"id": "c", "code": "print('x')", "salt": "rerun"}]
    verdicts = runner.run(programs)
    assert [v.id for v in verdicts] == ["a", "b", "c"] and {v.stdout for v in verdicts} == {"x\n"}
    assert (runner.executed, runner.cached) == (2, 1)
    assert [v.id for v in runner.run(programs[::-1])] == ["c", "b", "a"] and runner.executed == 2


def test_errors_are_never_cached(runner, monkeypatch):
    died = lambda programs: [error_verdict(p["id"], "sandbox worker died: test", "bwrap") for p in programs]  # noqa
    monkeypatch.setattr(runner.pool, "run_batch", died)
    assert runner.run([{"id": "a", "code": "print(3)"}])[0].status == "error"
    monkeypatch.undo()
    assert runner.run([{"id": "a", "code": "print(3)"}])[0].status == "passed"
    malformed = [{"id": "m", "code": "pass", "timeout_s": -1}]
    assert [v.status for v in runner.run(malformed) + runner.run(malformed)] == ["error", "error"]
    assert (runner.executed, runner.cached) == (4, 0)


def test_runner_without_cache_runs_every_distinct_program(bwrap_pool, tmp_path, monkeypatch):
    monkeypatch.setenv("CRUCIBLE_HOME", str(tmp_path))
    runner = CachedRunner(bwrap_pool, use_cache=False)
    for _ in range(2):
        runner.run([{"id": "a", "code": "print(4)"}, {"id": "b", "code": "print(4)"}])
    assert (runner.executed, runner.cached) == (2, 2) and runner.cache is None
    assert not (tmp_path / "cache").exists()
