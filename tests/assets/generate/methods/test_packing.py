"""single_turn_packing (assets/generate/methods/packing.py): grouping by embedding similarity (a hand-made encoder with
one axis per topic word, and once the real bundled embedder), sandbox reruns of every member and of the joined
program, the packed row's shape, and every reject reason. The teacher is never asked anything."""

from __future__ import annotations

import hashlib
from collections import Counter

import numpy as np
import pytest

from assets.generate.methods.base import MethodContext, MethodInputs, answer_text
from assets.generate.methods.config import PackingConfig
from assets.generate.methods.packing import form_groups, run
from assets.schemas import DIALOGUE_REJECTS, DIALOGUES, frame
from resources.embedder import TextEmbedder

TOPICS = ("reverse", "sum", "prime", "vowel")


def topic_encode(texts: list[str]) -> np.ndarray:
    """One axis per topic word: problems sharing a topic have cosine 1, others 0."""
    vectors = np.zeros((len(texts), len(TOPICS)), dtype=np.float32)
    for row, text in enumerate(texts):
        words = text.lower().split()
        hits = [axis for axis, topic in enumerate(TOPICS) if topic in words]
        assert len(hits) == 1, f"test text without exactly one topic word: {text!r}"
        vectors[row, hits[0]] = 1.0
    return vectors


def never_called(messages):
    raise AssertionError("single_turn_packing must not ask the teacher")


def parent(pid: str, instruction: str, solution: str, tests: str, **overrides) -> dict:
    """A verified single-turn function_instruct dialogue."""
    row = {"dialogue_id": f"d-{pid}", "problem_id": pid, "seed_id": f"seed-{pid}", "source": "stdlib-sample",
           "path": f"lib/{pid}.py", "license": "PSF-2.0", "method": "function_instruct", "parent_id": None,
           "teacher_model": "teacher-m", "programmer_model": "programmer-m", "prompt_version": "oss_instruct.v1",
           "config_fingerprint": "abc123", "feedback_mode": "execution", "instruction": instruction,
           "solution": solution, "tests": tests, "tests_source": "questioner",
           "messages": [{"role": "user", "content": instruction},
                        {"role": "assistant", "content": answer_text(solution)}],
           "turns": 1, "passed_turn": 1, "verdicts": [{"turn": 1, "status": "passed"}],
           "prompt_tokens": 100, "completion_tokens": 40}
    return {**row, **overrides}


REV_STRING = parent("r1", "Write reverse_string(s): return s reverse order.",
                    "def reverse_string(s):\n    return s[::-1]",
                    'assert reverse_string("abc") == "cba"\nassert reverse_string("") == ""')
REV_WORDS = parent("r2", "Write reverse_words(s): reverse the order of words.",
                   "def reverse_words(s):\n    return ' '.join(reversed(s.split()))",
                   'assert reverse_words("a b c") == "c b a"\nassert reverse_words("x") == "x"')
REV_LIST = parent("r3", "Write reverse_list(xs): a reverse copy of a list.",
                  "def reverse_list(xs):\n    return list(reversed(xs))", "assert reverse_list([1, 2]) == [2, 1]")
REV_DIGITS = parent("r4", "Write reverse_digits(n): the digits of n in reverse order.",
                    "def reverse_digits(n):\n    return int(str(n)[::-1])", "assert reverse_digits(123) == 321")
SUM_EVENS = parent("s1", "Write sum_evens(xs): the sum of the even numbers.",
                   "def sum_evens(xs):\n    return sum(x for x in xs if x % 2 == 0)",
                   "assert sum_evens([1, 2, 3, 4]) == 6\nassert sum_evens([]) == 0", tests_source="reference_outputs")
SUM_SQUARES = parent("s2", "Write sum_squares(xs): the sum of the squares.",
                     "def sum_squares(xs):\n    return sum(x * x for x in xs)", "assert sum_squares([1, 2, 3]) == 14",
                     prompt_tokens=7, completion_tokens=3)
IS_PRIME = parent("p1", "Write is_prime(n): is n a prime number?",
                  "def is_prime(n):\n    return n > 1 and all(n % d for d in range(2, int(n ** 0.5) + 1))",
                  "assert is_prime(7)\nassert not is_prime(9)")
# Passed once, but its solution no longer passes its tests.
SUM_ODDS_BROKEN = parent("s3", "Write sum_odds(xs): the sum of the odd numbers.",
                         "def sum_odds(xs):\n    return sum(x for x in xs if x % 2 == 0)",
                         "assert sum_odds([1, 2, 3]) == 4")
REV_UPPER_BROKEN = parent("r5", "Write reverse_upper(s): s in reverse order, upper-cased.",
                          "def reverse_upper(s):\n    return s.upper()", 'assert reverse_upper("ab") == "BA"')


def pack(method_context, parents, config=PackingConfig(), encode=topic_encode):
    with method_context(never_called, encode=encode) as (ctx, state):
        result = run(MethodInputs(dialogues=parents), config, ctx)
        assert state.total_requests == 0
        return result, ctx


def members(row: dict) -> list[str]:
    return row["parent_id"].split(",")


def test_groups_form_by_similarity_and_rows_are_well_formed(method_context):
    result, ctx = pack(method_context, [IS_PRIME, SUM_SQUARES, REV_WORDS, SUM_EVENS, REV_STRING])
    assert sorted(sorted(members(r)) for r in result.rows) == [["r1", "r2"], ["s1", "s2"]]
    assert [(r["parent_id"], r["reason"]) for r in result.rejects] == [("p1", "no_similar_partner")]
    assert result.counts == Counter({"no_similar_partner": 1})
    assert result.extra == {"groups": 2, "group_sizes": {2: 2}, "multi_turn_parents_skipped": 0,
                            "mean_similarity": 1.0}
    assert (result.prompt_tokens, result.completion_tokens) == (0, 0)

    by_id = {p["problem_id"]: p for p in (SUM_SQUARES, REV_WORDS, SUM_EVENS, REV_STRING)}
    for row in result.rows:
        parts = [by_id[pid] for pid in members(row)]
        assert row["method"] == "single_turn_packing" and row["prompt_version"] == "packing"
        assert [m["role"] for m in row["messages"]] == ["user", "assistant"] * len(parts)
        assert row["messages"] == [turn for p in parts for turn in p["messages"]]
        assert row["instruction"] == "\n\n".join(p["instruction"] for p in parts)
        assert row["solution"] == "\n\n\n".join(p["solution"] for p in parts)
        assert row["tests"] == "\n\n".join(p["tests"] for p in parts)
        assert row["problem_id"] == hashlib.sha256(",".join(sorted(members(row))).encode()).hexdigest()[:16]
        assert (row["turns"], row["passed_turn"]) == (len(parts), len(parts))
        assert [(v["turn"], v["status"]) for v in row["verdicts"]] == [(1, "passed"), (2, "passed")]
        assert all(v["backend"] == ctx.runner.backend for v in row["verdicts"])
        assert row["seed_id"] == parts[0]["seed_id"] and row["path"] == parts[0]["path"]
        assert row["teacher_model"] == "teacher-m" and row["programmer_model"] == "programmer-m"
        assert row["feedback_mode"] is None and "task_messages" not in row
        assert row["prompt_tokens"] == sum(p["prompt_tokens"] for p in parts)
        assert row["completion_tokens"] == sum(p["completion_tokens"] for p in parts)
        assert (ctx.home.configs / f"{row['config_fingerprint']}.json").is_file()
    sums = next(r for r in result.rows if "s1" in members(r))
    assert sums["tests_source"] == "reference_outputs"  # the weaker source of its members
    assert len({r["dialogue_id"] for r in result.rows}) == 2
    assert frame(result.rows, DIALOGUES).height == 2
    assert frame(result.rejects, DIALOGUE_REJECTS)["reason"].to_list() == ["no_similar_partner"]


@pytest.mark.parametrize("max_group, sizes", [(3, {3: 1}), (2, {2: 2})])
def test_max_group_is_honoured(method_context, max_group, sizes):
    result, _ = pack(method_context, [REV_STRING, REV_WORDS, REV_LIST, REV_DIGITS], PackingConfig(max_group=max_group))
    assert Counter(r["turns"] for r in result.rows) == Counter(sizes)
    assert result.extra["group_sizes"] == sizes
    lonely = 4 - sum(size * count for size, count in sizes.items())
    assert result.counts == (Counter({"no_similar_partner": lonely}) if lonely else Counter())
    packed = [pid for r in result.rows for pid in members(r)] + [r["parent_id"] for r in result.rejects]
    assert sorted(packed) == ["r1", "r2", "r3", "r4"]


def test_a_member_that_no_longer_passes_is_dropped(method_context):
    result, _ = pack(method_context, [REV_STRING, REV_WORDS, REV_UPPER_BROKEN, SUM_EVENS, SUM_ODDS_BROKEN])
    assert [sorted(members(r)) for r in result.rows] == [["r1", "r2"]]
    assert [v["status"] for v in result.rows[0]["verdicts"]] == ["passed", "passed"]
    assert result.counts == Counter({"member_fails_rerun": 2, "no_similar_partner": 1})
    reasons = {r["parent_id"]: r for r in result.rejects}
    assert {pid: r["reason"] for pid, r in reasons.items()} == {
        "r5": "member_fails_rerun", "s3": "member_fails_rerun", "s1": "no_similar_partner"}
    assert [v["status"] for v in reasons["s3"]["verdicts"]] == ["failed"]
    assert "AssertionError" in reasons["s3"]["verdicts"][0]["stderr"]
    assert reasons["s3"]["passed_turn"] is None and reasons["s1"]["passed_turn"] == 1
    assert frame(result.rejects, DIALOGUE_REJECTS).height == 3


def test_members_defining_the_same_name_are_not_packed(method_context):
    chars = parent("c1", "Write reverse(s): the reverse of a string.", "def reverse(s):\n    return s[::-1]",
                   'assert reverse("ab") == "ba"')
    words = parent("c2", "Write reverse(s): reverse the order of the words of s.",
                   "def reverse(s):\n    return ' '.join(s.split()[::-1])", 'assert reverse("a b") == "b a"')
    result, _ = pack(method_context, [chars, words])
    assert result.rows == []
    assert [(sorted(members(r)), r["reason"], r["turns"]) for r in result.rejects] == [
        (["c1", "c2"], "joined_program_fails", 2)]
    assert [v["status"] for v in result.rejects[0]["verdicts"]] == ["passed", "passed"]  # each alone passes
    assert result.counts == Counter({"joined_program_fails": 1})


def test_only_single_turn_parents_are_packed(method_context):
    revised = parent("r9", "Write reverse_pairs(xs): reverse each pair.", "def reverse_pairs(xs):\n    return xs",
                     "assert reverse_pairs([]) == []", turns=2, passed_turn=2,
                     messages=[{"role": "user", "content": "Write reverse_pairs"},
                               {"role": "assistant", "content": "x"},
                               {"role": "user", "content": "Execution result: failed"},
                               {"role": "assistant", "content": "y"}])
    # An AIEV-complete dialogue: its passing run's turn follows the answer and is left out of the pack.
    complete = parent("r2", REV_WORDS["instruction"], REV_WORDS["solution"], REV_WORDS["tests"],
                      messages=REV_WORDS["messages"] + [{"role": "user", "content": "Unit tests: ... passed"}])
    result, _ = pack(method_context, [revised, REV_STRING, complete])
    assert len(result.rows) == 1
    row = result.rows[0]
    assert sorted(members(row)) == ["r1", "r2"]
    assert [m["role"] for m in row["messages"]] == ["user", "assistant", "user", "assistant"]
    assert not any("Unit tests" in m["content"] for m in row["messages"])
    assert result.extra["multi_turn_parents_skipped"] == 1
    assert result.rejects == [] and result.counts == Counter()


def test_the_result_is_deterministic_for_a_seed(method_context):
    parents = [REV_STRING, REV_WORDS, REV_LIST, REV_DIGITS, SUM_EVENS, SUM_SQUARES, IS_PRIME]
    config = PackingConfig(max_group=2, seed=7)
    first, _ = pack(method_context, parents, config)
    again, _ = pack(method_context, list(reversed(parents)), config)  # input order does not matter
    assert [r["parent_id"] for r in first.rows] == [r["parent_id"] for r in again.rows]
    assert [r["dialogue_id"] for r in first.rows] == [r["dialogue_id"] for r in again.rows]
    assert [r["parent_id"] for r in first.rejects] == [r["parent_id"] for r in again.rejects]


def test_grouping_follows_the_seed_similarity_and_skips_duplicates():
    rev = [REV_STRING, REV_WORDS, REV_LIST, REV_DIGITS]
    vectors = topic_encode([p["instruction"] for p in rev])
    pairings = {tuple(tuple(g.members) for g in form_groups(rev, vectors, PackingConfig(max_group=2, seed=s))[0])
                for s in range(8)}
    assert len(pairings) > 1  # the seed decides which problems become anchors
    # Graded similarity: whichever problem anchors, it takes its nearest neighbour, and none under the threshold.
    graded = np.array([[1.0, 0.0], [0.9, np.sqrt(0.19)], [0.6, 0.8]], dtype=np.float32)
    three = [parent(f"g{i}", f"problem {i}", "x = 1", "assert x == 1") for i in range(3)]
    similarity = graded @ graded.T
    np.fill_diagonal(similarity, -1)
    anchors = set()
    for seed in range(6):
        groups, alone = form_groups(three, graded, PackingConfig(max_group=2, min_similarity=0.5, seed=seed))
        (anchor, partner), = [g.members for g in groups]
        assert partner == int(np.argmax(similarity[anchor]))
        assert groups[0].similarities == [1.0, pytest.approx(float(similarity[anchor, partner]))]
        assert alone == [({0, 1, 2} - {anchor, partner}).pop()]
        anchors.add(anchor)
    assert len(anchors) > 1
    groups, alone = form_groups(three, graded, PackingConfig(min_similarity=0.95))
    assert groups == [] and sorted(alone) == [0, 1, 2]
    # The same instruction twice is never packed with itself.
    twins = [parent("t1", "same words", "x = 1", "assert x"), parent("t2", "same words", "x = 1", "assert x")]
    groups, alone = form_groups(twins, np.ones((2, 1), dtype=np.float32), PackingConfig())
    assert groups == [] and sorted(alone) == [0, 1]


def test_without_an_embedder_it_says_so(tmp_path):
    ctx = MethodContext(teacher=None, programmer=None, runner=None, home=None, source="s", encode=None)
    with pytest.raises(ValueError, match="needs the embedder"):
        run(MethodInputs(dialogues=[REV_STRING]), PackingConfig(), ctx)


def test_real_embedder_packs_related_problems(method_context, tmp_path):
    embedder = TextEmbedder(cache_path=tmp_path / "embedding-cache.sqlite")
    string = parent("e1", "Write a function reverse_string(s) that returns the string s with its characters in "
                          "reverse order.", REV_STRING["solution"], REV_STRING["tests"])
    words = parent("e2", "Write a function reverse_words(sentence) that returns the sentence with the order of its "
                         "words reversed.", REV_WORDS["solution"], REV_WORDS["tests"])
    primes = parent("e3", "Write a function count_primes(n) that returns how many prime numbers are smaller than n.",
                    "def count_primes(n):\n    return sum(all(k % d for d in range(2, k)) for k in range(2, n))",
                    "assert count_primes(10) == 4")
    result, _ = pack(method_context, [primes, string, words], encode=embedder.encode)
    assert [sorted(members(r)) for r in result.rows] == [["e1", "e2"]]
    assert [(r["parent_id"], r["reason"]) for r in result.rejects] == [("e3", "no_similar_partner")]
    assert result.extra["mean_similarity"] > PackingConfig().min_similarity
