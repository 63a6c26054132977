"""The teacher client against a local OpenAI-compatible stub with injected faults."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from resources.llm import ChatRequest, TeacherClient, TeacherError
from resources.llm_cache import LLMCache, request_key
from tests.openai_stub_server import StubServer, StubState, expected_answer

CRUCIBLE = str(Path(sys.executable).parent / "crucible")


def requests(n, prefix="q"):
    return [ChatRequest(f"{prefix}{i}", [{"role": "system", "content": "be brief"},
                                         {"role": "user", "content": f"{prefix} question {i}"}]) for i in range(n)]


def client(server, tmp_path, **kw):
    defaults = dict(concurrency=8, timeout_s=1.0, max_attempts=8, backoff_base_s=0.01, backoff_max_s=0.05,
                    cache=LLMCache(tmp_path / "llm.sqlite"))
    return TeacherClient(server.base_url, "stub", **{**defaults, **kw})


def test_every_prompt_answered_despite_faults_then_served_from_cache(tmp_path):
    faults = ["429", "500", "truncated", "drop", "garbage", "hang"]
    state = StubState(latency_s=0.01, faults=faults, hang_s=6.0)
    reqs = requests(16)
    with StubServer(state) as server:
        results = client(server, tmp_path, timeout_s=2.0).complete_batch(reqs)
        assert [r.id for r in results] == [r.id for r in reqs]
        assert all(r.content == expected_answer(q.messages) for r, q in zip(results, reqs))
        # Each prompt went through every planned fault before its answer (more attempts only if the machine is so
        # loaded that a healthy request timed out too).
        assert all(r.attempts >= len(faults) + 1 and not r.cached for r in results)
        assert all(state.attempts[q.messages[-1]["content"]] == r.attempts for q, r in zip(reqs, results))
        seen = state.total_requests

        again = client(server, tmp_path)
        cached = again.complete_batch(reqs)
        assert state.total_requests == seen  # zero new requests
        assert all(r.cached for r in cached)
        assert [r.content for r in cached] == [r.content for r in results]
        assert again.totals.cached == 16 and again.totals.prompt_tokens == 0


def test_usage_and_cost_are_accounted(tmp_path):
    with StubServer(StubState()) as server:
        c = client(server, tmp_path, usd_per_mtok_in=1000.0, usd_per_mtok_out=2000.0)
        results = c.complete_batch(requests(3))
    assert all(r.usage["prompt_tokens"] == 3 and r.usage["total_tokens"] > 3 for r in results)
    totals = c.totals
    assert totals.prompt_tokens == 9 and totals.completion_tokens == sum(r.usage["completion_tokens"] for r in results)
    assert totals.cost_usd == pytest.approx((9 * 1000 + totals.completion_tokens * 2000) / 1e6)


def test_concurrency_is_bounded(tmp_path):
    state = StubState(latency_s=0.1)
    with StubServer(state) as server:
        client(server, tmp_path, concurrency=3).complete_batch(requests(12))
    assert state.max_in_flight == 3


def test_retry_after_is_honoured(tmp_path):
    state = StubState(faults=["429"], retry_after="0.6")
    with StubServer(state) as server:
        start = time.monotonic()
        result = client(server, tmp_path, backoff_max_s=5).complete_batch(requests(1))[0]
    assert time.monotonic() - start >= 0.6
    assert result.attempts == 2


def test_giving_up_names_the_request(tmp_path):
    with StubServer(StubState(faults=["500"] * 10)) as server:
        with pytest.raises(TeacherError, match=r"request 'q0'.*after 3 attempts.*HTTP 500"):
            client(server, tmp_path, max_attempts=3).complete_batch(requests(1))


def test_client_errors_are_not_retried(tmp_path):
    state = StubState(faults=["400"])
    with StubServer(state) as server:
        with pytest.raises(TeacherError, match=r"request 'q0': HTTP 400.*not retryable"):
            client(server, tmp_path).complete_batch(requests(1))
    assert state.total_requests == 1


def test_failures_do_not_drop_other_rows(tmp_path):
    state = StubState()
    with StubServer(state) as server:
        c = client(server, tmp_path, max_attempts=2)
        bad = ChatRequest("bad", [{"role": "user", "content": "x"}])
        state.faults = []
        results = asyncio.run(_collect(c, requests(4) + [bad], state))
    errors = [r for r in results if isinstance(r, TeacherError)]
    assert len(results) == 5 and len(errors) == 1 and "'bad'" in str(errors[0])


async def _collect(c, reqs, state):
    # The prompt "x" always fails: plan it before the batch starts.
    state.attempts["x"] = 0
    original = state.plan
    state.plan = lambda prompt: "500" if prompt == "x" else original(prompt)
    return [item async for item in c.iter_complete(reqs)]


@pytest.mark.parametrize("change", [dict(model="other"), dict(params={"temperature": 0.7, "max_tokens": 10}),
                                    dict(prompt_version="v2"),
                                    dict(messages=[{"role": "user", "content": "hi!"}])])
def test_cache_key_covers_everything_that_changes_the_answer(change):
    base = dict(model="m", messages=[{"role": "user", "content": "hi"}], params={"temperature": 0.0,
                                                                                  "max_tokens": 10},
                prompt_version="v1")
    assert request_key(**base) == request_key(**dict(base))
    assert request_key(**base) != request_key(**{**base, **change})


# -- the CLI, called exactly as the acceptance checks call it ----------------------------------------------------------

def write_input(path, n):
    with path.open("w") as handle:
        for i in range(n):
            handle.write(json.dumps({"id": f"r{i}", "messages": [{"role": "user", "content": f"cli question {i}"}],
                                     "temperature": 0, "max_tokens": 32}) + "\n")


def ask(server, tmp_path, inp, out, concurrency=4, **popen):
    cmd = [CRUCIBLE, "teacher", "ask", "--base-url", server.base_url, "--model", "stub", "--input", str(inp),
           "--output", str(out), "--concurrency", str(concurrency)]
    env = {**os.environ, "CRUCIBLE_HOME": str(tmp_path / "home")}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_cli_ask_then_rerun_from_cache(tmp_path):
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_input(inp, 10)
    state = StubState(latency_s=0.01, faults=["500"])
    with StubServer(state) as server:
        proc = ask(server, tmp_path, inp, out)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        first = {r["id"]: r for r in rows(out)}
        assert set(first) == {f"r{i}" for i in range(10)}
        assert all(set(r) == {"id", "content", "usage", "cached"} and r["cached"] is False for r in first.values())
        assert first["r3"]["content"] == expected_answer([{"role": "user", "content": "cli question 3"}])
        seen = state.total_requests

        out.unlink()
        proc = ask(server, tmp_path, inp, out)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert state.total_requests == seen  # everything from the cache
        assert all(r["cached"] for r in rows(out)) and len(rows(out)) == 10
        assert "10 from cache" in err


def test_cli_malformed_lines_are_named_and_the_rest_run(tmp_path):
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    inp.write_text(json.dumps({"id": "ok", "messages": [{"role": "user", "content": "fine"}]}) + "\n"
                   + "{broken\n" + json.dumps({"id": "nomsg"}) + "\n")
    with StubServer(StubState()) as server:
        proc = ask(server, tmp_path, inp, out)
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1
    assert f"{inp}:2:" in err and f"{inp}:3:" in err and "'messages' must be" in err
    assert [r["id"] for r in rows(out)] == ["ok"]


def test_cli_missing_input_is_one_line(tmp_path):
    with StubServer(StubState()) as server:
        proc = ask(server, tmp_path, tmp_path / "nope.jsonl", tmp_path / "out.jsonl")
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and err.count("\n") == 1 and "nope.jsonl: no such file" in err


def test_cli_kill_9_then_rerun_loses_nothing_and_repeats_nothing(tmp_path):
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    n = 60
    write_input(inp, n)
    state = StubState(latency_s=0.1)
    with StubServer(state) as server:
        proc = ask(server, tmp_path, inp, out)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not out.exists() or out.read_text().count("\n") < 15):
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        before = {r["id"] for r in rows(out)}
        assert 15 <= len(before) < n
        served_before = sum(state.served.values())

        proc = ask(server, tmp_path, inp, out)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err

    ids = [r["id"] for r in rows(out)]
    assert sorted(ids) == sorted(f"r{i}" for i in range(n))  # nothing lost, nothing written twice
    for rid in before:  # no finished request was asked again
        assert state.served[f"cli question {rid[1:]}"] == 1
    # At most the requests in flight at the kill (concurrency 4) were answered by the server but never recorded.
    assert sum(state.served.values()) <= n + 4
    assert served_before - len(before) <= 4


# -- the Dagster resource -------------------------------------------------------------------------------------------

def test_teacher_resource_in_an_asset(tmp_path, monkeypatch):
    import dagster as dg

    from resources.llm import TeacherLLM

    monkeypatch.setenv("CRUCIBLE_HOME", str(tmp_path))

    @dg.asset
    def answers(teacher: TeacherLLM) -> dg.MaterializeResult:
        client = teacher.client()
        results = client.complete_batch(requests(3))
        return dg.MaterializeResult(metadata={"answers": len(results), **client.totals.as_dict()})

    with StubServer(StubState()) as server:
        result = dg.materialize([answers], resources={"teacher": TeacherLLM(base_url=server.base_url, model="stub")})
    meta = result.asset_materializations_for_node("answers")[0].metadata
    assert meta["answers"].value == 3 and meta["prompt_tokens"].value == 9


@pytest.mark.slow
def test_teacher_resource_falls_back_to_the_bundled_model(tmp_path, monkeypatch):
    from resources.llm import TeacherLLM
    from resources.llm_server import LocalTeacher

    monkeypatch.setenv("CRUCIBLE_HOME", str(tmp_path))
    teacher = TeacherLLM(local=LocalTeacher(model="smollm2-135m", n_ctx=1024))
    try:
        result = teacher.client().complete_batch(
            [ChatRequest("hi", [{"role": "user", "content": "Say hello."}], max_tokens=16)])[0]
    finally:
        teacher.local.teardown_after_execution(None)
    assert result.content.strip() and result.usage["completion_tokens"] > 0
