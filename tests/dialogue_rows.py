"""Dialogue rows in the pipeline's exact format (assets/schemas.py DIALOGUES), for tests of the stages after
generation: a first answer that fails, the execution result and feedback, and a passing second answer — or one
answer that passes at once."""

from __future__ import annotations

import hashlib

import polars as pl

from assets.schemas import CONTAMINATION_REPORT, DIALOGUES, frame
from resources.home import Home
from resources.store import table_path, write_table

TASKS = [
    ("add_all", "numbers", "sum(numbers)", "[1, 2, 3]", "6"),
    ("count_vowels", "text", "sum(c in 'aeiou' for c in text.lower())", "'Banana'", "3"),
    ("longest_word", "text", "max(text.split(), key=len) if text.split() else ''", "'a bb ccc'", "'ccc'"),
    ("dedupe", "items", "list(dict.fromkeys(items))", "[3, 1, 3, 2]", "[3, 1, 2]"),
    ("swap_case_words", "text", "' '.join(w.swapcase() for w in text.split())", "'aB c'", "'Ab C'"),
    ("running_max", "xs", "[max(xs[:i + 1]) for i in range(len(xs))]", "[1, 3, 2]", "[1, 3, 3]"),
]


def _id(*parts) -> str:
    return hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()[:16]


def dialogue_row(i: int, source: str = "stdlib", fail_first: bool | None = None) -> dict:
    name, arg, body, example, expected = TASKS[i % len(TASKS)]
    variant = i // len(TASKS)
    fn = f"{name}_{variant}" if variant else name
    solution = f"def {fn}({arg}):\n    return {body}\n"
    tests = f"assert {fn}({example}) == {expected}\nassert {fn}([] if {arg!r} in ('numbers', 'items', 'xs') " \
            f"else '') is not None\n"
    instruction = f"Write a function `{fn}({arg})` for case {i}: it returns what `{body}` computes."
    fail_first = i % 2 == 1 if fail_first is None else fail_first
    answer = f"```python\n{solution}```"
    messages = [{"role": "user", "content": instruction}]
    if fail_first:
        messages += [
            {"role": "assistant", "content": f"```python\ndef {fn}({arg}):\n    return None\n```"},
            {"role": "user", "content": f"Execution result:\nAssertionError: {fn}({example}) == {expected}  "
                                        f"got: None\n\nThe function returns None; compute the value instead."},
        ]
    messages.append({"role": "assistant", "content": answer})
    problem_id = _id("problem", source, i)
    return {
        "dialogue_id": _id("dialogue", source, i), "problem_id": problem_id, "seed_id": _id("seed", source, i),
        "source": source, "path": f"{source}/module_{i}.py", "license": "PSF-2.0" if source == "stdlib" else "MIT",
        "teacher_model": "teacher-test", "prompt_version": "oss_instruct.v1@test", "config_fingerprint": "cfg000test0",
        "programmer_model": "teacher-test", "feedback_mode": "execution", "instruction": instruction,
        "solution": solution, "tests": tests, "tests_source": "questioner", "messages": messages,
        "turns": 2 if fail_first else 1, "passed_turn": 2 if fail_first else 1, "verdicts": [],
        "prompt_tokens": 100 + i, "completion_tokens": 40 + i,
    }


def write_dialogues(source: str, indices: range, assets=("verified_dialogues", "deduplicated_dialogues",
                                                         "decontaminated_dialogues"),
                    home: Home | None = None) -> pl.DataFrame:
    """Store the rows as partition `source` of each of `assets` under `home` (default: the environment's), the way
    the IO manager would."""
    df = frame([dialogue_row(i, source) for i in indices], DIALOGUES)
    for asset in assets:
        write_table(df, table_path(asset, source, home))
    return df


def write_contamination(source: str, rows: list[dict]) -> None:
    write_table(frame(rows, CONTAMINATION_REPORT), table_path("contamination_report", source))
