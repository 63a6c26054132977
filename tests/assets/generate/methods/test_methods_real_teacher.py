"""Every generation method once with the real bundled teacher (Qwen2.5-Coder-1.5B on llama.cpp) and the real sandbox,
on one or two hand-made parents each: every input is kept or rejected with a reason, and every kept row ends in code
that passes its tests. What each method managed is printed (-s) for the record; the yield on ten seeds is measured by
benchmarks/generation_methods.py."""

from __future__ import annotations

import pytest

from assets.generate.config import DialoguesConfig
from assets.generate.dialogue_loop import ends_verified
from assets.generate.method_run import run_method
from assets.generate.methods import PARTITIONED_METHODS
from assets.generate.methods.base import MethodContext, MethodInputs
from assets.generate.methods.config import MethodDialoguesConfig
from assets.generate.questioner import problem_id
from assets.schemas import DIALOGUE_REJECTS, DIALOGUES, frame
from resources.embedder import Embedder
from resources.llm import TeacherLLM
from resources.llm_server import LocalTeacher
from resources.sandbox import Sandbox

PARENTS = [
    ("Write a function `clamp(x: int, low: int, high: int) -> int` that returns `x` limited to the range "
     "[low, high].", "def clamp(x, low, high):\n    return max(low, min(x, high))\n",
     "assert clamp(5, 0, 10) == 5\nassert clamp(-3, 0, 10) == 0\nassert clamp(42, 0, 10) == 10\n"
     "assert clamp(0, 0, 0) == 0"),
    ("Write a function `count_words(text: str) -> int` that returns how many whitespace-separated words `text` has.",
     "def count_words(text):\n    return len(text.split())\n",
     "assert count_words('') == 0\nassert count_words('a b  c') == 3\nassert count_words(' one ') == 1\n"
     "assert count_words('x\\ny') == 2"),
]
WINDOW = ("    for start in range(0, len(seq), size):\n        chunk = seq[start:start + size]\n"
          "        if chunk:\n            yield chunk\n")
NUMPY_SEED = ("def normalize_rows(matrix):\n    \"\"\"Scale each row of a 2-D array to unit L1 norm.\"\"\"\n"
              "    sums = np.abs(matrix).sum(axis=1, keepdims=True)\n"
              "    return matrix / np.where(sums == 0, 1, sums)\n")


def provenance(i: int, source: str = "stdlib") -> dict:
    return {"seed_id": f"seed{i}", "source": source, "path": f"file{i}.py", "license": "PSF-2.0"}


def inputs() -> MethodInputs:
    problems, dialogues = [], []
    for i, (statement, solution, tests) in enumerate(PARENTS):
        name = solution.split("(")[0].removeprefix("def ")
        p = {"problem_id": problem_id(statement, tests), **provenance(i), "instruction": statement,
             "solution": solution, "tests": tests, "entry_point": name, "tests_source": "questioner",
             "prompt_version": "hand", "config_fingerprint": "hand", "method": "function_instruct"}
        problems.append(p)
        dialogues.append({**p, "dialogue_id": f"d{i}", "turns": 1, "passed_turn": 1, "messages": [
            {"role": "user", "content": statement},
            {"role": "assistant", "content": f"```python\n{solution}```"}]})
    seeds = [{**provenance(9), "kind": "window", "symbol": "L1-4", "code": WINDOW, "n_lines": 4,
              "language": "python"},
             {**provenance(8, "library:numpy"), "license": "BSD-3-Clause", "kind": "function",
              "symbol": "normalize_rows", "code": NUMPY_SEED, "n_lines": 4, "language": "python"}]
    return MethodInputs(seeds=seeds, problems=problems, dialogues=dialogues)


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_every_method_with_the_bundled_teacher(bundled_teacher_home):
    model, home = bundled_teacher_home
    quick = {"max_turns": 2, "fresh_attempts": 0, "max_tokens": 512}
    config = MethodDialoguesConfig(
        dialogues=DialoguesConfig(max_turns=2, max_tokens=512), evol_instruct=quick, similar_problem=quick,
        follow_up=quick, library_instruct=quick, oss_instruct={"max_tokens": 512},
        interaction_simulation={"max_turns": 2, "max_tokens": 512}, code_correction={"max_tokens": 512},
        single_turn_packing={"min_similarity": 0.0})
    everything = inputs()
    teacher = TeacherLLM(local=LocalTeacher(model=str(model.path), home=str(home.root)), home=str(home.root))
    sandbox = Sandbox(workers=2, home=str(home.root))
    embedder = Embedder(home=str(home.root))
    kept, report = 0, {}
    try:
        ctx = MethodContext(teacher.client(), teacher.client(), sandbox.runner(), home, "stdlib",
                            encode=embedder.encode)
        for method in PARTITIONED_METHODS:
            library = method == "library_instruct"
            own = MethodInputs(seeds=[s for s in everything.seeds if (s["source"] == "library:numpy") == library],
                               problems=everything.problems[:1], dialogues=everything.dialogues)
            if method != "single_turn_packing":
                own.dialogues = own.dialogues[:1]
            result = run_method(method, own, config, ctx)
            started = len(own.seeds) if method in ("oss_instruct", "library_instruct") else \
                len(own.problems) if method in ("evol_instruct", "similar_problem", "interaction_simulation") else \
                len(own.dialogues)
            report[method] = {"kept": len(result.rows), "rejects": dict(result.counts)}
            frame(result.rows, DIALOGUES), frame(result.rejects, DIALOGUE_REJECTS)  # the rows fit their tables
            # Every input is accounted for: kept, or rejected with a reason (packing keeps two parents in one row).
            accounted = len(result.rows) * (2 if method == "single_turn_packing" else 1) + len(result.rejects)
            assert accounted == started, (method, report[method])
            assert all(r["reason"] for r in result.rejects), method
            for row in result.rows:
                assert row["method"] == method
                assert ends_verified(row["messages"], row["verdicts"]), (method, row["messages"])
            kept += len(result.rows)
    finally:
        print(report)
        teacher.local.teardown_after_execution(None)
        sandbox.pool().close()
    assert kept >= 3, report  # packing alone gives one; the teacher's methods add the rest
