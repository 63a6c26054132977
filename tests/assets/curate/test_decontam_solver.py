"""The execution layer's solver: rows without a runnable function get one written by a model, and that function is
judged like any other (benchmark tests, then agreement with the canonical solution) in the real sandbox."""

from collections import Counter

import pytest

from assets.curate.decontam_layers import (
    EXECUTION,
    BenchmarkIndex,
    DecontamSettings,
    ExecutionHit,
    LayerScores,
    execution_verdicts,
    matches,
    needs_solution,
    score_layers,
)
from assets.curate.decontam_solver import LazySolver, SolutionSolver
from assets.keys import CONTAMINATION_REPORT_TABLE, DECONTAMINATED_DIALOGUES, DEDUPLICATED_DIALOGUES
from eval.benchmarks import load_benchmarks
from resources.embedder import TextEmbedder
from resources.llm import TeacherClient
from resources.llm_cache import LLMCache
from tests.openai_stub_server import StubServer, StubState

BIGGEST = "Return the biggest element of a list of numbers."
STDIN_SCRIPT = "import sys\nprint(max(int(x) for x in sys.stdin))\n"
ANSWERS = {  # problem text -> the scripted model's reply
    BIGGEST: "```python\ndef biggest(values):\n    return max(values)\n```",
    "Read numbers from standard input and print the largest one.":
        "Sure.\n```python\ndef largest(numbers):\n    best = numbers[0]\n    for n in numbers:\n"
        "        if n > best:\n            best = n\n    return best\n```",
    "Return the smallest element of a list, plus one.": "```python\ndef f(xs):\n    return min(xs) + 1\n```",
    "Explain recursion.": "Recursion is when a function calls itself.",  # no code at all
}


PRINTS = "Print every word of a sentence, one per line."
ANSWERS[PRINTS] = "```python\ndef words(sentence):\n    for w in sentence.split():\n        print(w)\n```"
REPAIRED = {PRINTS: "```python\ndef words(sentence):\n    return sentence.split()\n```"}
SQRT = "Return the square root of a number, rounded down."
ANSWERS[SQRT] = "```python\ndef isqrt_down(n):\n    return floor(math.sqrt(n))\n```"


# How the repair prompt (decontam_solver_repair.v1) opens: the scripted model tells repair turns apart by it.
REPAIR_OPENING = "This function cannot be used yet"


def scripted(messages):
    """The scripted model: a repair turn gets the REPAIRED answer of the problem, else the same reply again."""
    if messages[-1]["content"].startswith(REPAIR_OPENING):
        return REPAIRED.get(messages[-3]["content"], messages[-2]["content"])
    return ANSWERS[messages[-1]["content"]]


def repairs(state: StubState) -> int:
    return sum(p.startswith(REPAIR_OPENING) for p, _ in state.log)


@pytest.fixture(scope="module")
def embedder(tmp_path_factory):
    return TextEmbedder(cache_path=tmp_path_factory.getbasetemp() / "embedding-cache.sqlite")


@pytest.fixture(scope="module")
def index(embedder):
    return BenchmarkIndex.for_settings(load_benchmarks(), embedder.encode, DecontamSettings())


def client(server, tmp_path, **kw):
    return TeacherClient(server.base_url, "scripted", cache=LLMCache(tmp_path / "llm.sqlite"), **kw)


def test_solver_sends_the_versioned_prompt_and_keeps_the_code(tmp_path):
    state = StubState(responder=scripted)
    with StubServer(state) as server:
        solve = SolutionSolver(client(server, tmp_path))
        codes = solve([BIGGEST, "Explain recursion."])
    assert codes == ["def biggest(values):\n    return max(values)", None]
    assert solve.unanswered == 1 and solve.prompt.version.startswith("decontam_solver.v1@")
    # The answer without code was sent back once; the same answer again is not kept.
    assert repairs(state) == 1 and (solve.repairs_asked, solve.repairs_kept) == (1, 0)
    request = solve.requests([BIGGEST])[0]
    assert request.messages[0]["role"] == "system" and "parameters" in request.messages[0]["content"]
    assert request.messages[-1] == {"role": "user", "content": BIGGEST}
    assert request.temperature == 0.0 and request.params() == {"temperature": 0.0, "max_tokens": 512}
    # Later attempts sample, seeded by the attempt, so a rerun asks the same and is answered from the cache.
    second = solve.requests([BIGGEST], attempt=1)[0]
    assert second.params() == {"temperature": 0.8, "max_tokens": 512, "seed": 1}
    assert second.messages == request.messages and second.id != request.id


def test_a_function_that_prints_gets_one_repair_turn_and_missing_imports_are_added(tmp_path):
    conversations = []
    state = StubState(responder=lambda messages: conversations.append(messages) or scripted(messages))
    with StubServer(state) as server:
        solve = SolutionSolver(client(server, tmp_path))
        codes = solve([PRINTS, SQRT])
    assert codes == ["def words(sentence):\n    return sentence.split()",
                     "from math import floor\nimport math\n\ndef isqrt_down(n):\n    return floor(math.sqrt(n))"]
    assert (solve.repairs_asked, solve.repairs_kept) == (1, 1)  # the imports needed no model
    assert len(conversations) == 3
    repair = conversations[-1]
    # The repair turn continues the model's own conversation without the prompt's worked example, and names the
    # problem in words it can act on.
    assert [m["role"] for m in repair] == ["system", "user", "assistant", "user"]
    assert repair[1]["content"] == PRINTS and "print(w)" in repair[2]["content"]
    assert "delete every print() call and `return` what it printed" in repair[3]["content"]


def test_a_failed_request_leaves_that_row_without_code(tmp_path):
    with StubServer(StubState(responder=scripted, faults=["500"])) as server:
        solve = SolutionSolver(client(server, tmp_path, max_attempts=1))
        assert solve([BIGGEST]) == [None]
    assert solve.unanswered == 1


def test_rows_without_a_function_are_judged_on_the_solvers_code(tmp_path, index, embedder, bwrap_pool):
    rows = [
        {"instruction": BIGGEST},  # HumanEval/35 in other words, text only
        {"instruction": "Read numbers from standard input and print the largest one.", "solution": STDIN_SCRIPT},
        {"instruction": "Return the smallest element of a list, plus one."},  # not a benchmark function
        {"instruction": "Explain recursion."},  # the model answers without code
        {"instruction": "Return the n-th Fibonacci number.", "solution": "def fib(n):\n    return n\n"},
    ]
    assert [needs_solution(r) for r in rows] == [True, True, True, True, False]
    state = StubState(responder=scripted)
    with StubServer(state) as server:
        made = Counter()

        def make_client():
            made["clients"] += 1
            return client(server, tmp_path)

        solve = LazySolver(make_client)
        scores = score_layers(index, rows, DecontamSettings(), embedder.encode, bwrap_pool.run_batch, solve)
    # Only the rows without a function were sent, not the row with its own solution; the two whose first function
    # matched nothing were sent a second time (a sampled attempt).
    sent = Counter(p for p, _ in state.log if not p.startswith(REPAIR_OPENING))
    assert sent == Counter({rows[0]["instruction"]: 1, rows[1]["instruction"]: 1, rows[2]["instruction"]: 2,
                            rows[3]["instruction"]: 2})
    assert repairs(state) == 2  # the answer without code, once per attempt
    assert made["clients"] == 1 and solve.asked == 4 and solve.unanswered == 2
    assert set(scores.synthesized) == {0, 1, 2, 3} and scores.synthesized[3] is None
    found = [m for m in matches(index, scores, DecontamSettings()) if m.layer == EXECUTION]
    assert [(m.row, m.task_id, m.detail) for m in found] == [(0, "HumanEval/35", "biggest (synthesized)"),
                                                             (1, "HumanEval/35", "largest (synthesized)")]


def test_no_rows_to_solve_never_starts_the_solver(index, embedder, bwrap_pool):
    def refuse():
        raise AssertionError("the solver's client must not be made when every row has a function")

    solve = LazySolver(refuse)
    rows = [{"instruction": BIGGEST, "solution": "def top(xs):\n    return max(xs)\n"}]
    found = matches(index, score_layers(index, rows, DecontamSettings(), embedder.encode, bwrap_pool.run_batch,
                                        solve), DecontamSettings())
    assert [(m.layer, m.task_id, m.detail) for m in found if m.layer == EXECUTION] == [
        (EXECUTION, "HumanEval/35", "top")]
    assert solve.asked == 0


def test_the_asset_asks_the_teacher_for_rows_without_a_function(tmp_path, monkeypatch):
    import dagster as dg

    from assets.curate.decontamination import decontaminated_dialogues
    from assets.partitions import seed_source_partitions
    from assets.schemas import DIALOGUES, frame
    from resources.embedder import Embedder
    from resources.llm import TeacherLLM
    from resources.sandbox import Sandbox
    from resources.store import ParquetIOManager, read_table, table_path, write_table
    from tests.assets.curate.test_decontamination import dialogue

    monkeypatch.setenv("CRUCIBLE_HOME", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("seed_source", ["stdlib"])
    rows = [dialogue(0, BIGGEST, None),
            dialogue(1, "Parse an INI file into sections.", "def parse_ini(text):\n    return {}\n")]
    write_table(frame(rows, DIALOGUES), table_path(DEDUPLICATED_DIALOGUES, "stdlib"))
    state = StubState(responder=scripted)
    with StubServer(state) as server:
        result = dg.materialize(
            [dg.AssetSpec(DEDUPLICATED_DIALOGUES, partitions_def=seed_source_partitions), decontaminated_dialogues],
            partition_key="stdlib", instance=instance,
            selection=[DECONTAMINATED_DIALOGUES, CONTAMINATION_REPORT_TABLE],
            resources={"io_manager": ParquetIOManager(), "sandbox": Sandbox(workers=1),
                       "embedder": Embedder(cache_path=str(tmp_path / "embeddings.sqlite")),
                       "teacher": TeacherLLM(base_url=server.base_url, model="scripted")})
    assert result.success
    assert [p for p, _ in state.log] == [BIGGEST]  # the row with a function was not sent
    assert read_table(DECONTAMINATED_DIALOGUES, ["stdlib"])["dialogue_id"].to_list() == ["d1"]
    report = read_table(CONTAMINATION_REPORT_TABLE, ["stdlib"]).to_dicts()
    assert [(r["dialogue_id"], r["layer"], r["task_id"], r["detail"]) for r in report] == [
        ("d0", "execution", "HumanEval/35", "biggest (synthesized)")]
    metadata = result.asset_materializations_for_node("decontaminated_dialogues")[0].metadata
    assert metadata["rows_given_a_synthesized_solution"].value == 1
    assert metadata["synthesized_without_usable_code"].value == 0
    assert metadata["synthesized_repairs_asked_kept"].value == [0, 0]


# -- which of the solver's hits count -------------------------------------------------------------------------------
def hit(item, rank, similarity, attempt, agreement=1.0):
    return ExecutionHit(item, f"f{attempt}", rank, similarity, agreement, attempt)


@pytest.mark.parametrize(("hits", "counted"), [
    ([hit(7, 2, 1.3, 0)], 7),  # close in wording: one function is enough
    ([hit(7, 9, 0.6, 0)], None),  # far from the wording, one attempt only: a buggy function's coincidence?
    ([hit(7, 9, 0.6, 0), hit(7, 9, 0.6, 1)], 7),  # two independent answers land on the same item
    ([hit(7, 9, 0.6, 0), hit(8, 4, 0.65, 1)], None),  # two attempts, two different items: no confirmation
    ([hit(7, 9, 0.6, 0), hit(7, 9, 0.6, 1, agreement=0.5)], None),  # the second one does not agree on inputs
    ([hit(7, 16, 1.2, 0), hit(7, 16, 1.2, 1)], None),  # beyond solver_top_k (15): never counts for the solver
])
def test_a_synthesized_function_counts_when_close_in_wording_or_confirmed_by_another_attempt(hits, counted):
    scores = LayerScores(execution_hits=[hits, hits], synthesized={0: "def f(): ..."})
    synthesized, given = execution_verdicts(scores, DecontamSettings())
    assert (synthesized.item if synthesized else None) == counted
    # The same hits on a row's own solution count whenever the function agrees with the canonical one.
    assert given is not None and given.item == next(h.item for h in hits if h.agreement >= 0.9)
    no_confirmation = DecontamSettings(solver_confirmations=3)
    assert execution_verdicts(scores, no_confirmation)[0] is (synthesized if synthesized and
                                                              synthesized.similarity >= 0.7 else None)
