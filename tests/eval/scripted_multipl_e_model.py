"""A scripted chat model for `crucible eval run` on MultiPL-E, served by tests/openai_stub_server.py.

It answers the fixture problems (tests/data/multipl_e/rows.jsonl) with the fixture completions
(tests/data/multipl_e/samples.jsonl), right for some tasks and wrong for others, in each of the shapes a chat model
answers in (PLAN: task id -> shape, which fixture completion):

    whole       the prompt repeated with the body written in, in a fence, between two lines of prose
    bare        the function alone (header and body, no includes, imports or doc comment), in a fence
    body        the body alone, in a fence
    unfenced    the body alone, no fence
    two_blocks  a usage example in a first fence, then the whole program in a second

Most correct fixture completions run on past the function into code that would break the program, so they pass only
when cut where MultiPL-E cuts. Every request is recorded (`requests`), so a test can show what the model was sent.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "data" / "multipl_e"

PLAN = {
    "cpp/HumanEval_1001_sum_of_squares": ("whole", "correct"),
    "cpp/HumanEval_1002_count_vowels": ("body", "wrong"),
    "cpp/mbpp_1003_max_of_three": ("body", "correct"),
    "js/HumanEval_1001_sum_of_squares": ("bare", "correct"),
    "js/HumanEval_1002_count_vowels": ("whole", "wrong"),
    "js/mbpp_1003_max_of_three": ("body", "correct"),
    "rs/HumanEval_1001_sum_of_squares": ("whole", "correct"),
    "rs/HumanEval_1002_count_vowels": ("body", "wrong"),
    "go/HumanEval_1001_sum_of_squares": ("whole", "correct"),
    "go/HumanEval_1002_count_vowels": ("whole", "wrong"),
    "java/HumanEval_1001_sum_of_squares": ("whole", "correct"),
    "java/HumanEval_1002_count_vowels": ("bare", "correct"),
    "sh/HumanEval_1001_sum_of_squares": ("whole", "wrong"),
    "sh/HumanEval_1002_count_vowels": ("body", "correct"),
    "sh/mbpp_1003_max_of_three": ("unfenced", "correct"),
    "ts/HumanEval_1001_sum_of_squares": ("two_blocks", "correct"),
    "php/HumanEval_1001_sum_of_squares": ("whole", "wrong"),
    "py/HumanEval_1001_sum_of_squares": ("bare", "correct"),
}


def fixture_completions() -> dict[tuple[str, str], str]:
    """(task_id, "correct" or "wrong") -> the fixture completion."""
    out = {}
    for line in (DATA / "samples.jsonl").read_text().splitlines():
        row = json.loads(line)
        out.setdefault((row["task_id"], row["fixture"]), row["completion"])
    return out


def header_line(item) -> str:
    """The prompt's function header: Python's `def` line, elsewhere the last line that opens a brace."""
    lines = item.prompt.splitlines()
    if item.language == "python":
        return next(line for line in reversed(lines) if line.startswith("def "))
    return next(line for line in reversed(lines) if line.rstrip().endswith("{"))


def answer(item, shape: str, completion: str) -> str:
    tag = item.language
    if shape == "whole":
        return f"Here is the completed function.\n\n```{tag}\n{item.prompt}{completion}```\n\nIt passes the examples."
    if shape == "bare":
        return f"```{tag}\n{header_line(item)}\n{completion}```"
    if shape == "body":
        return f"```{tag}\n{completion}```"
    if shape == "unfenced":
        return completion
    if shape == "two_blocks":
        usage = f"console.log({item.entry_point}([1, 2]));"
        return f"Usage:\n```{tag}\n{usage}\n```\n\nThe function:\n```{tag}\n{item.prompt}{completion}```\n"
    raise ValueError(shape)


class ScriptedMultiPLEModel:
    def __init__(self, items: dict, plan: dict[str, tuple[str, str]] = PLAN) -> None:
        self.items, self.plan = items, plan
        self.completions = fixture_completions()
        self.lock = threading.Lock()
        self.requests: list[list[dict]] = []

    def item_of(self, messages: list[dict]):
        asked = messages[-1]["content"]
        return next(item for item in self.items.values() if f"```{item.language}\n{item.prompt.rstrip()}\n```" in asked)

    def __call__(self, messages: list[dict]) -> str:
        with self.lock:
            self.requests.append([dict(m) for m in messages])
        item = self.item_of(messages)
        shape, fixture = self.plan[item.task_id]
        return answer(item, shape, self.completions[(item.task_id, fixture)])

    def sent_text(self) -> str:
        return "\n".join(m["content"] for request in self.requests for m in request)
