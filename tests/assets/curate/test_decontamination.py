"""Decontamination: each layer on the hand-written labelled set and on exact copies of all 664 benchmark items,
the execution layer's binding and agreement check, and the decontaminated_dialogues asset."""

import dataclasses
import json
from pathlib import Path

import dagster as dg
import numpy as np
import pytest

from assets.curate.decontam_binding import (
    agreement,
    agreement_program,
    batch_outcomes,
    batch_program,
    binding_programs,
    call_arguments,
    entry_arity,
    parse_solution,
    perturbed_inputs,
)
from assets.curate.decontam_layers import (
    EMBEDDING,
    EXECUTION,
    NGRAM,
    BenchmarkIndex,
    DecontamSettings,
    binding_rows,
    matches,
    needs_solution,
    run_bindings,
    score_layers,
    verdicts,
)
from assets.curate.decontam_solver import solver_session
from assets.curate.decontamination import decontaminated_dialogues
from assets.keys import CONTAMINATION_REPORT_TABLE, DECONTAMINATED_DIALOGUES, DEDUPLICATED_DIALOGUES
from assets.partitions import seed_source_partitions
from assets.schemas import CONTAMINATION_REPORT, DIALOGUES, frame
from eval.benchmarks import load_benchmarks
from resources.embedder import Embedder, TextEmbedder
from resources.llm import TeacherLLM
from resources.sandbox import Sandbox
from resources.store import ParquetIOManager, read_table, table_path, write_table
from resources.verdict_cache import CachedRunner, VerdictCache

LABELLED = Path(__file__).resolve().parents[2] / "data" / "decontam_labelled.jsonl"
HELDOUT = LABELLED.with_name("decontam_heldout.jsonl")
DEFAULTS = DecontamSettings()


@pytest.fixture(scope="module")
def items():
    return load_benchmarks()


@pytest.fixture(scope="module")
def by_task(items):
    return {it.task_id: it for it in items}


@pytest.fixture(scope="module")
def embedder(tmp_path_factory):
    return TextEmbedder(cache_path=tmp_path_factory.getbasetemp() / "embedding-cache.sqlite")


@pytest.fixture(scope="module")
def index(items, embedder):
    return BenchmarkIndex.for_settings(items, embedder.encode, DEFAULTS)


@pytest.fixture(scope="module")
def labelled():
    return [json.loads(line) for line in LABELLED.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def labelled_scores(index, labelled, embedder, bwrap_pool2):
    return score_layers(index, labelled, DEFAULTS, embedder.encode, bwrap_pool2.run_batch)


def rates(flags, labels):
    flags, labels = np.asarray(flags, bool), np.asarray(labels, bool)
    precision = (flags & labels).sum() / max(flags.sum(), 1)
    return precision, (flags & labels).sum() / labels.sum(), (flags & ~labels).sum() / (~labels).sum()


# -- the labelled set ------------------------------------------------------------------------------------------------
def test_labelled_set_shape(labelled):
    contaminated = [r for r in labelled if r["contaminated"]]
    clean = [r for r in labelled if not r["contaminated"]]
    assert len(contaminated) >= 60 and len(clean) >= 60
    assert {r["distance"] for r in contaminated} == {"close", "renamed", "story", "io_format"}
    assert {r["kind"] for r in clean} == {"near_miss", "unrelated"}
    assert any(r.get("solution") for r in contaminated) and any(r.get("solution") for r in clean)
    assert {r["benchmark"] for r in contaminated} == {"humaneval", "mbpp"}


def test_the_held_out_set_is_disjoint_from_the_calibration_set(labelled, items):
    """benchmarks/heldout_decontam.py scores the defaults on rows that played no part in choosing them: paraphrases
    of other benchmark problems, and near misses of those."""
    heldout = [json.loads(line) for line in HELDOUT.read_text().splitlines() if line.strip()]
    ids = [r["id"] for r in labelled + heldout]
    assert len(ids) == len(set(ids))
    calibrated = {r["task_id"] for r in labelled if r["contaminated"]}
    tasks = {it.task_id for it in items}
    contaminated = [r for r in heldout if r["contaminated"]]
    assert len(contaminated) >= 25 and len(heldout) - len(contaminated) >= 25
    assert all(r["task_id"] in tasks for r in contaminated)
    # One exception: ho-he026 was written as a near miss, turned out to be HumanEval/26 and was relabelled.
    assert [r["id"] for r in contaminated if r["task_id"] in calibrated] == ["ho-he026"]
    assert all(r["near"] in tasks for r in heldout if r.get("kind") == "near_miss")
    assert sum(not r.get("solution") for r in heldout) >= 50  # mostly text only: the solver's case


def per_layer_flags(index, scores, layer, labelled):
    found = matches(index, scores, DecontamSettings(layers=(layer,)))
    flagged = {m.row for m in found}
    return [r in flagged for r in range(len(labelled))], found


def test_ngram_layer_on_labelled_set(index, labelled_scores, labelled):
    # Rewordings in other words share no long token runs with the originals: the layer is for copies, and it
    # must not fire on clean rows.
    flags, _ = per_layer_flags(index, labelled_scores, NGRAM, labelled)
    precision, recall, fpr = rates(flags, [r["contaminated"] for r in labelled])
    assert fpr == 0.0 and precision == 1.0 and recall > 0


def test_embedding_layer_on_labelled_set(index, labelled_scores, labelled):
    flags, found = per_layer_flags(index, labelled_scores, EMBEDDING, labelled)
    precision, recall, fpr = rates(flags, [r["contaminated"] for r in labelled])
    # Calibrated (benchmarks/calibrate_decontam.py), all-MiniLM-L6-v2: description >= 0.95 or prompt >= 0.73:
    # P=1.0 R=0.31 FPR=0 (the description view alone: R=0.05; at 0.9 it would add one false positive).
    assert precision >= 0.9 and fpr <= 0.05 and recall >= 0.3
    for m in found:
        threshold = {"description": DEFAULTS.embedding_threshold, "prompt": DEFAULTS.prompt_threshold}[m.detail]
        assert m.score >= threshold


# Paraphrases judged by their text alone (no solution) that only the prompt view catches (their description
# similarity is below 0.9), and near misses of the same benchmark problems that it spares.
PROMPT_VIEW_CATCHES = ["he-008-renamed", "he-131-renamed", "mb-267-renamed", "he-004-renamed", "he-040-close"]
PROMPT_VIEW_SPARES = ["nm-he008-squares", "nm-he131-evensum", "nm-mb066-evenneg", "nm-mb062-secondmax",
                      "nm-mb096-perfect", "ot-semver"]


@pytest.mark.parametrize("row_id, caught", [(i, True) for i in PROMPT_VIEW_CATCHES]
                         + [(i, False) for i in PROMPT_VIEW_SPARES])
def test_prompt_view_on_text_only_rows(index, embedder, labelled, row_id, caught):
    row = next(r for r in labelled if r["id"] == row_id)
    settings = DecontamSettings(layers=(NGRAM, EMBEDDING))
    scores = score_layers(index, [{"instruction": row["instruction"]}], settings, embedder.encode)
    assert float(scores.embedding.max()) < settings.embedding_threshold
    found = matches(index, scores, settings)
    if caught:
        assert [(m.layer, m.task_id, m.detail) for m in found] == [(EMBEDDING, row["task_id"], "prompt")]
    else:
        assert found == []


def test_execution_layer_on_labelled_set(index, labelled_scores, labelled):
    flags, found = per_layer_flags(index, labelled_scores, EXECUTION, labelled)
    labels = [r["contaminated"] for r in labelled]
    precision, _, fpr = rates(flags, labels)
    with_solution = [i for i, r in enumerate(labelled) if r["contaminated"] and r.get("solution")]
    recall_with_solution = sum(flags[i] for i in with_solution) / len(with_solution)
    # Calibrated: P=1.0, FPR=0, recall 1.0 among contaminated rows with a solution (top_k=20, agreement 0.9).
    assert precision >= 0.95 and fpr <= 0.02 and recall_with_solution >= 0.95
    named = [m for m in found if labelled[m.row]["contaminated"]]
    assert sum(m.task_id == labelled[m.row]["task_id"] for m in named) >= 0.95 * len(named)
    assert all(not flags[i] for i, r in enumerate(labelled) if not r.get("solution"))


def test_combined_on_labelled_set(index, labelled_scores, labelled):
    found = matches(index, labelled_scores, DEFAULTS)
    decided = verdicts(len(labelled), found)
    precision, recall, fpr = rates([d is not None for d in decided], [r["contaminated"] for r in labelled])
    # Without a solver the 36 rows without a solution rely on the text layers: P=1.0 R=0.84 FPR=0 here.
    assert fpr <= 0.05 and precision >= 0.95 and recall >= 0.8
    for d in decided:
        if d is not None and len({m.layer for m in found if m.row == d.row}) > 1:
            assert d.layer in (EXECUTION, NGRAM)  # the strongest evidence names the verdict


def test_combined_with_the_bundled_solver_on_labelled_set(index, labelled, embedder, bwrap_pool2):
    """The defaults as `crucible decontam` applies them: Qwen2.5-Coder-1.5B writes functions for the 36 rows that
    come without one (and the 2 whose solution is not a function), its code reviewed and repaired. Calibrated:
    P=1.0 R=0.988 FPR=0; the bound below is the goal itself (R >= 0.95 at <= 5% false positives), which leaves three
    rows of slack for llama.cpp answers that differ under load."""
    with solver_session() as solve:
        scores = score_layers(index, labelled, DEFAULTS, embedder.encode, bwrap_pool2.run_batch, solve)
    found = matches(index, scores, DEFAULTS)
    labels = [r["contaminated"] for r in labelled]
    precision, recall, fpr = rates([d is not None for d in verdicts(len(labelled), found)], labels)
    assert recall >= 0.95 and fpr <= 0.05 and precision >= 0.95
    # The 36 without a solution and 2 whose solution defines no function (a class, a stdin script).
    assert sorted(scores.synthesized) == [i for i, r in enumerate(labelled) if needs_solution(r)]
    assert len(scores.synthesized) == 38
    synthesized = [m for m in found if m.layer == EXECUTION and m.detail.endswith("(synthesized)")]
    assert len(synthesized) >= 8
    # Calibrated with no false positive among them; CI (stop 28) saw one clean row matched through a synthesized
    # function, within the 5% bound above. Two would mean the solver's confirmation rule has slipped.
    wrong = [labelled[m.row]["id"] for m in synthesized if not labelled[m.row]["contaminated"]]
    assert len(wrong) <= 1, f"clean rows matched through a synthesized function: {wrong}"


# -- exact copies of every benchmark item ---------------------------------------------------------------------------
def test_exact_copies_are_caught_by_ngram(items, index):
    rows = [{"instruction": it.prompt} for it in items]
    found = matches(index, score_layers(index, rows, DecontamSettings(layers=(NGRAM,))), DEFAULTS)
    assert {m.row for m in found} == set(range(len(items)))
    assert all(m.score == 1.0 for m in found)
    # A copied solution alone is caught too, where it is long enough to judge by overlap (>= ngram_min 10-grams;
    # one-line solutions such as `return min(xs)` are left to the execution layer).
    rows = [{"instruction": "Solve this.", "solution": it.solution} for it in items]
    found = matches(index, score_layers(index, rows, DecontamSettings(layers=(NGRAM,))), DEFAULTS)
    judged = {i for i in range(len(items)) if (i, 2) in index.field_sizes}
    assert len(judged) > 600 and judged <= {m.row for m in found}


def test_exact_copies_are_caught_by_embedding(items, index, embedder):
    rows = [{"instruction": it.description} for it in items]
    found = matches(index, score_layers(index, rows, DecontamSettings(layers=(EMBEDDING,)), embedder.encode),
                    DEFAULTS)
    assert {m.row for m in found} == set(range(len(items)))
    assert all(m.detail == "description" for m in found)  # the description view is reported before the prompt's
    # Where two benchmarks share a description the match may name the other copy; otherwise it names the item.
    descriptions = [it.description for it in items]
    assert all(descriptions[m.row] == items[[i.task_id for i in items].index(m.task_id)].description for m in found)


def test_exact_copies_are_caught_by_execution(items, index, embedder, bwrap_pool2):
    rows = [{"instruction": it.description, "solution": it.solution} for it in items]
    settings = DecontamSettings(layers=(EXECUTION,), top_k=2)  # 2: a few MBPP problems share a description
    found = matches(index, score_layers(index, rows, settings, embedder.encode, bwrap_pool2.run_batch), settings)
    assert {m.row for m in found} == set(range(len(items)))
    assert all(m.layer == EXECUTION and m.score == 1.0 for m in found)


# -- the execution layer's pieces -----------------------------------------------------------------------------------
@pytest.mark.parametrize("solution", [None, "", "   ", "def broken(:\n", "x = 1\nprint(x)\n", "class A:\n    pass\n"])
def test_nothing_to_run(solution):
    assert parse_solution(solution) is None


def test_parse_solution_keeps_definitions_only():
    parsed = parse_solution("import math\nLIMIT = 3\n\ndef f(a, b=1, *rest):\n    return a\n\nprint(f(1))\n"
                            "if __name__ == '__main__':\n    input()\n\ndef g(*, key):\n    return key\n")
    assert "print" not in parsed.code and "input" not in parsed.code and "LIMIT = 3" in parsed.code
    f, g = parsed.functions
    assert (f.accepts(1), f.accepts(5), g.accepts(0), g.accepts(1)) == (True, True, False, False)


def test_rows_without_a_runnable_solution_skip_the_execution_layer(index, embedder, bwrap_pool):
    rows = [{"instruction": "Return the n-th Fibonacci number."},
            {"instruction": "Return the n-th Fibonacci number.", "solution": "def fib(n) return n"},
            {"instruction": "Return the n-th Fibonacci number.", "solution": "print('hello')"}]
    scores = score_layers(index, rows, DecontamSettings(layers=(EXECUTION,)), embedder.encode, bwrap_pool.run_batch)
    assert scores.execution == [None, None, None]


def test_binding_aliases_the_entry_point(by_task, bwrap_pool):
    item = by_task["HumanEval/13"]
    parsed = parse_solution("def helper(x):\n    return abs(x)\n\ndef my_gcd(a, b):\n    while b:\n"
                            "        a, b = b, a % b\n    return helper(a)\n")
    programs = binding_programs(parsed, item, entry_arity(item))
    # helper takes one argument where the tests pass two: only with the last one dropped.
    assert [b.label for b, _ in programs] == ["helper (last argument dropped)", "my_gcd", "my_gcd (arguments swapped)"]
    direct = dict((b.label, code) for b, code in programs)["my_gcd"]
    assert "greatest_common_divisor = my_gcd" in direct
    verdicts = bwrap_pool.run_batch([{"id": b.label, "code": code} for b, code in programs])
    assert [v.passed for v in verdicts] == [False, True, True]  # gcd is symmetric


def test_adapters_catch_reordered_and_trimmed_parameters(index, embedder, bwrap_pool):
    rows = [
        # HumanEval/29 filter_by_prefix(strings, prefix), parameters the other way round.
        {"instruction": "Keep the words of a list that start with a given prefix.",
         "solution": "def starting_with(prefix, words):\n    return [w for w in words if w.startswith(prefix)]\n"},
        # Mbpp/57 find_Max_Num(arr, n) passes the list's length too; this function takes the list only.
        {"instruction": "Arrange a list of digits into the largest number they can form.",
         "solution": "def biggest_number(digits):\n"
                     "    return int(''.join(str(d) for d in sorted(digits, reverse=True)))\n"},
        # Mbpp/42 find_Sum(arr, n) likewise.
        {"instruction": "Add up the elements of a list that occur more than once, every copy counted.",
         "solution": "def repeated_total(xs):\n    return sum(x for x in xs if xs.count(x) > 1)\n"},
    ]
    found = matches(index, score_layers(index, rows, DEFAULTS, embedder.encode, bwrap_pool.run_batch), DEFAULTS)
    by_row = {m.row: m for m in found if m.layer == EXECUTION}
    assert (by_row[0].task_id, by_row[0].detail) == ("HumanEval/29", "starting_with (arguments swapped)")
    assert (by_row[1].task_id, by_row[1].detail) == ("Mbpp/57", "biggest_number (last argument dropped)")
    assert (by_row[2].task_id, by_row[2].detail) == ("Mbpp/42", "repeated_total (last argument dropped)")


def test_execution_layer_verdicts_come_from_the_cache_on_a_second_run(index, embedder, by_task, bwrap_pool,
                                                                     tmp_path):
    copy = by_task["HumanEval/29"]
    rows = [{"instruction": copy.prompt, "solution": copy.solution},
            {"instruction": "Keep the words of a list that start with a given prefix.",
             "solution": "def starting_with(prefix, words):\n    return [w for w in words if w.startswith(prefix)]\n"}]
    settings = DecontamSettings(layers=(EXECUTION,))
    cache = VerdictCache(tmp_path / "verdicts.sqlite")
    first = CachedRunner(bwrap_pool, cache)
    scores = score_layers(index, rows, settings, embedder.encode, first.run)
    assert [index.items[h.item].task_id for h in scores.execution] == ["HumanEval/29", "HumanEval/29"]
    second = CachedRunner(bwrap_pool, cache)  # a later run: the asset materialized again, or the CLI rerun
    again = score_layers(index, rows, settings, embedder.encode, second.run)
    assert again.execution == scores.execution and again.execution_hits == scores.execution_hits
    assert first.executed > 0 and second.executed == 0 and second.cached == first.executed + first.cached


def test_perturbed_inputs_keep_a_length_argument_consistent(by_task):
    # find_Max_Num([1,2,3], 3): when the list changes, the 3 that was its length follows it.
    inputs = perturbed_inputs(by_task["Mbpp/57"])
    assert ([3, 2, 1], 3) in inputs and ([1, 2, 3, 3], 4) in inputs and ([2, 3], 2) in inputs
    assert ([1, 2, 3], 4) in inputs  # the length alone still changes too


def test_agreement_rejects_a_function_that_passes_weak_tests_by_chance(by_task, bwrap_pool):
    """A mode() passes Mbpp/62's three asserts (every test list is all-distinct) but is not smallest_num."""
    item = by_task["Mbpp/62"]
    assert call_arguments(item) == [([10, 20, 1, 45, 99],), ([1, 2, 3],), ([45, 46, 50, 60],)]
    inputs = perturbed_inputs(item)
    assert ([99, 45, 1, 20, 10],) in inputs and ([10, 20, 1, 45, 99, 99],) in inputs
    mode = parse_solution("from collections import Counter\n\ndef mode(xs):\n    c = Counter(xs)\n"
                          "    top = max(c.values())\n    return min(v for v, n in c.items() if n == top)\n")
    smallest = parse_solution("def lowest(xs):\n    return sorted(xs)[0]\n")
    programs = [binding_programs(mode, item, 1)[0][1], agreement_program(mode, "mode", item, inputs),
                agreement_program(smallest, "lowest", item, inputs)]
    tests, mode_check, smallest_check = bwrap_pool.run_batch([{"id": str(i), "code": c}
                                                              for i, c in enumerate(programs)])
    assert tests.passed
    compared, agreed = agreement(mode_check.stdout)
    assert compared == len(inputs) and agreed / compared < DEFAULTS.agreement
    assert agreement(smallest_check.stdout) == (len(inputs), len(inputs))


def test_agreement_skips_inputs_the_canonical_solution_loops_on(by_task, bwrap_pool):
    # Mbpp/167's canonical solution loops forever on negative numbers; those inputs must not count.
    item = by_task["Mbpp/167"]
    parsed = parse_solution("def ceil_pow2(n):\n    p = 1\n    while p < n:\n        p *= 2\n    return p\n")
    code = agreement_program(parsed, "ceil_pow2", item, [(-3,), (5,), (17,)], per_call_s=0.3)
    verdict = bwrap_pool.run_batch([{"id": "a", "code": code}])[0]
    assert verdict.passed and agreement(verdict.stdout) == (2, 2)


# -- the asset ------------------------------------------------------------------------------------------------------
def dialogue(i, instruction, solution):
    return {"dialogue_id": f"d{i}", "problem_id": f"p{i}", "seed_id": f"s{i}", "source": "stdlib",
            "instruction": instruction, "solution": solution, "tests": "", "messages": [], "turns": 1,
            "passed_turn": 1, "verdicts": []}


def test_asset_removes_flagged_rows_and_reports_them(tmp_path, monkeypatch, by_task, labelled):
    monkeypatch.setenv("CRUCIBLE_HOME", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the online benchmarks are skipped, with a logged reason
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("seed_source", ["stdlib"])
    copy = by_task["HumanEval/2"]
    story = next(r for r in labelled if r["id"] == "mb-102-story")
    clean = next(r for r in labelled if r["id"] == "ot-semver")
    rows = [dialogue(0, copy.prompt, copy.solution), dialogue(1, story["instruction"], story["solution"]),
            dialogue(2, clean["instruction"], clean["solution"])]
    write_table(frame(rows, DIALOGUES), table_path(DEDUPLICATED_DIALOGUES, "stdlib"))
    upstream = dg.AssetSpec(DEDUPLICATED_DIALOGUES, partitions_def=seed_source_partitions)
    result = dg.materialize(
        [upstream, decontaminated_dialogues], partition_key="stdlib", instance=instance,
        selection=[DECONTAMINATED_DIALOGUES, CONTAMINATION_REPORT_TABLE],
        resources={"io_manager": ParquetIOManager(), "sandbox": Sandbox(workers=2), "teacher": TeacherLLM(),
                   "embedder": Embedder(cache_path=str(tmp_path.parent / "embedding-cache.sqlite"))})
    assert result.success
    out = read_table(DECONTAMINATED_DIALOGUES, ["stdlib"])
    report = read_table(CONTAMINATION_REPORT_TABLE, ["stdlib"])
    assert out["dialogue_id"].to_list() == ["d2"]
    assert list(report.schema.items()) == list(CONTAMINATION_REPORT.items())
    layers = {(r["dialogue_id"], r["layer"]): r for r in report.to_dicts()}
    assert layers[("d0", "ngram")]["task_id"] == "HumanEval/2" and layers[("d0", "ngram")]["score"] == 1.0
    assert layers[("d0", "execution")]["task_id"] == "HumanEval/2"
    assert layers[("d1", "execution")]["task_id"] == "Mbpp/102"
    assert layers[("d1", "execution")]["detail"] == "to_pascal"
    metadata = result.asset_materializations_for_node("decontaminated_dialogues")[0].metadata
    assert metadata["rows_removed"].value == 2 and metadata["removed_humaneval"].value == 1
    assert metadata["benchmarks"].value == ["humaneval", "mbpp"]
    assert metadata["thresholds"].value["solver_top_k"] == DEFAULTS.solver_top_k
    assert metadata["rows_given_a_synthesized_solution"].value == 0  # every row came with a function
    assert metadata["sandbox_runs"].value > 0  # through the cached runner (under CRUCIBLE_HOME)
    assert (tmp_path / "cache" / "verdicts.sqlite").is_file()


# -- a row's binding programs run as one batch ----------------------------------------------------------------------
def test_a_batch_reports_each_program_and_leaves_what_follows_a_crash_undecided(bwrap_pool):
    programs = ["assert 1 + 1 == 2", "assert 1 + 1 == 3", "raise SystemExit(0)", "raise SystemExit('no')",
                "while True:\n    pass", "x = 1",
                "import time\ntry:\n    time.sleep(2)\nexcept BaseException:\n    pass",
                "import os\nos._exit(3)", "assert True"]
    verdict = bwrap_pool.run_one({"id": "batch", "code": batch_program(programs, 0.5), "timeout_s": 5})
    # the endless loop is stopped by its own timer and the batch goes on; a program that swallows the timer's
    # exception still ran past its limit; the process dies at os._exit, so the programs from there on are left to
    # run on their own
    assert batch_outcomes(verdict.stdout, len(programs)) == [True, False, True, False, False, True, False, None,
                                                             None]
    assert batch_outcomes("noise\n@@crucible-binding 9 pass\n", 2) == [None, None]


def test_batched_bindings_decide_as_separate_programs_do(index, labelled, embedder, bwrap_pool2):
    """On the labelled rows that come with code, every binding program's outcome is the same whether it ran in its
    row's batch or alone, and a batch that reports nothing falls back to separate programs."""
    rows = [r for r in labelled if r.get("solution")][:60]
    sims = embedder.encode([r["instruction"] for r in rows]) @ index.vectors.T
    per_row = binding_rows(index, [r["solution"] for r in rows], sims, DEFAULTS)
    separate = [v.passed for v in bwrap_pool2.run_batch([p for row in per_row for _, p in row])]
    batched = [ok for _, ok in run_bindings(per_row, DEFAULTS, bwrap_pool2.run_batch)]
    assert sum(len(row) for row in per_row) > 10 * len(per_row) and any(separate) and batched == separate
    # A batch that reports nothing (its process killed): every program of it runs again on its own, same outcomes.
    seen = []

    def silent_batches(programs):
        seen.append(len(programs))
        return [dataclasses.replace(v, stdout="") if p["id"].startswith("batch:") else v
                for p, v in zip(programs, bwrap_pool2.run_batch(programs))]

    fallback = [ok for _, ok in run_bindings(per_row[:2], DEFAULTS, silent_batches)]
    assert seen == [2, sum(len(row) for row in per_row[:2])] and fallback == separate[:seen[1]]
