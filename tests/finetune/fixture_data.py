"""A tiny sft_dataset in the pipeline's own format: train.parquet / test.parquet (or the Hub layout data/*.parquet),
`messages` as list<struct<role, content>> plus provenance columns that training must ignore.

Every dialogue is AIEV-Instruct shaped: an instruction, a failing first answer, the execution result (a user turn with
the "Execution result:" prefix, or a `tool` turn), and a passing second answer. Some start with a system turn.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

MESSAGES = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
SCHEMA = pa.schema([
    ("id", pa.string()), ("split", pa.string()), ("messages", MESSAGES), ("problem_id", pa.string()),
    ("instruction", pa.string()), ("solution", pa.string()), ("tests", pa.string()), ("turns", pa.int32()),
    ("passed_turn", pa.int32()), ("feedback_mode", pa.string()), ("seed_id", pa.string()), ("source", pa.string()),
    ("license", pa.string()), ("teacher_model", pa.string()), ("prompt_version", pa.string()),
    ("config_fingerprint", pa.string()), ("dataset_version", pa.string()),
])

OPS = [("add", "+", "the sum"), ("sub", "-", "the difference"), ("mul", "*", "the product"),
       ("floordiv", "//", "the floor quotient"), ("mod", "%", "the remainder"), ("power", "**", "the power")]
WRONG = {"+": "-", "-": "+", "*": "+", "//": "/", "%": "//", "**": "*"}


def dialogue(index: int, execution_role: str) -> list[dict]:
    name, op, what = OPS[index % len(OPS)]
    fn = f"{name}_{index}"
    instruction = f"Write a Python function `{fn}(a, b)` that returns {what} of a and b."
    wrong = f"```python\ndef {fn}(a, b):\n    return a {WRONG[op]} b\n```"
    right = f"```python\ndef {fn}(a, b):\n    return a {op} b\n```\nThis returns {what} of `a` and `b`."
    error = (f"Execution result: FAILED\nTraceback (most recent call last):\n  File \"test.py\", line 3\n"
             f"    assert {fn}(7, 3) == {eval(f'7 {op} 3')}\nAssertionError")
    chat = []
    if index % 3 == 0:
        chat.append({"role": "system", "content": "You are a careful Python programmer."})
    chat.append({"role": "user", "content": instruction})
    chat.append({"role": "assistant", "content": wrong})
    if execution_role == "tool":
        chat.append({"role": "tool", "content": error})
        chat.append({"role": "user", "content": "The test failed; please fix the operator."})
    else:
        chat.append({"role": "user", "content": error + "\nPlease fix the operator."})
    chat.append({"role": "assistant", "content": right})
    return chat


def rows(split: str, count: int, offset: int = 0) -> list[dict]:
    out = []
    for i in range(offset, offset + count):
        chat = dialogue(i, "tool" if i % 2 else "user")
        name = OPS[i % len(OPS)][0]
        out.append({
            "id": hashlib.sha256(repr(chat).encode()).hexdigest()[:16], "split": split, "messages": chat,
            "problem_id": f"p{i}", "instruction": next(t["content"] for t in chat if t["role"] == "user"),
            "solution": chat[-1]["content"], "tests": f"assert {name}_{i}(7, 3) is not None",
            "turns": 2, "passed_turn": 2, "feedback_mode": "execution", "seed_id": f"seed{i}", "source": "stdlib",
            "license": "PSF-2.0", "teacher_model": "scripted", "prompt_version": "programmer.v1@abc",
            "config_fingerprint": "0123456789ab", "dataset_version": "fixture",
        })
    return out


def write_sft_dataset(folder: str | Path, train: int = 12, test: int = 4, hub_layout: bool = False) -> Path:
    folder = Path(folder)
    for split, count, offset in (("train", train, 0), ("test", test, 1000)):
        if not count:
            continue
        table = pa.Table.from_pylist(rows(split, count, offset), schema=SCHEMA)
        path = folder / "data" / f"{split}-00000-of-00001.parquet" if hub_layout else folder / f"{split}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path)
    return folder
