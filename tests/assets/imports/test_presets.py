"""Presets, the reader and code extraction on rows in each published shape (tests/data/imports/), broken rows
included."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assets.imports.extract import extract_solution, language_name
from assets.imports.presets import PRESETS, BadImport, Skipped, check_columns, generic_shape, map_row, require_preset
from assets.imports.reader import read_rows

DATA = Path(__file__).resolve().parents[2] / "data" / "imports"


def rows(name: str) -> list[dict]:
    return [row for _, row in read_rows(str(DATA / name))]


def test_magicoder_rows_map_with_their_seed_and_language():
    preset = require_preset("magicoder-oss-instruct")
    mapped = [map_row(r, preset) for r in rows("magicoder.jsonl")]
    first = mapped[0]
    assert first.instruction.startswith("Write a function `parse_duration(text)`")
    assert [m["role"] for m in first.messages] == ["user", "assistant"]
    assert first.seed.startswith("UNITS") and first.lang == "python" and first.row_id == "0"
    assert mapped[3].lang == "cpp"
    assert mapped[4] == Skipped("missing_response", "column 'solution' is empty")
    assert mapped[5] == Skipped("missing_instruction", "column 'problem' is empty")


def test_code_feedback_chats_keep_every_turn_and_broken_chats_are_skipped():
    preset = require_preset("code-feedback")
    mapped = [map_row(r, preset) for r in rows("code_feedback.jsonl")]
    assert len(mapped[0].messages) == 4 and mapped[0].row_id == "101"
    assert mapped[0].instruction.startswith("Write a function `running_max(values)`")
    assert isinstance(mapped[1], Skipped) and mapped[1].reason == "malformed_messages"
    assert [m["role"] for m in mapped[2].messages] == ["user", "assistant"]


def test_generic_with_renamed_columns_and_a_bad_mapping():
    data = str(DATA / "generic.json")
    first = rows("generic.json")[0]
    with pytest.raises(BadImport, match=r"column 'instruction' \(instruction of preset generic\) is not in the data"):
        check_columns(first, require_preset("generic"), data)
    preset = require_preset("generic").with_columns({"instruction": "prompt", "response": "answer"})
    check_columns(first, preset, data)
    assert map_row(rows("generic.json")[1], preset) == Skipped("missing_response", "column 'answer' is empty")
    with pytest.raises(BadImport, match="'question' is not a column role"):
        require_preset("generic").with_columns({"question": "q"})
    with pytest.raises(BadImport, match="--preset 'alpaca' is not known"):
        require_preset("alpaca")


def test_generic_takes_a_chat_when_the_data_has_messages():
    preset = generic_shape(require_preset("generic"), {"messages": []})
    assert preset.messages == "messages" and preset.instruction is None


def test_a_broken_jsonl_line_is_named(tmp_path):
    path = tmp_path / "broken.jsonl"
    path.write_text(json.dumps({"problem": "a", "solution": "b"}) + "\n{not json\n")
    with pytest.raises(BadImport, match=r"broken.jsonl: line 2 is not valid JSON"):
        list(read_rows(str(path)))
    with pytest.raises(BadImport, match="no such file"):
        list(read_rows(str(tmp_path / "missing.jsonl")))
    (tmp_path / "rows.csv").write_text("a,b\n")
    with pytest.raises(BadImport, match="unknown file type '.csv'"):
        list(read_rows(str(tmp_path / "rows.csv")))


def test_limit_reads_only_the_first_rows():
    assert [i for i, _ in read_rows(str(DATA / "magicoder.jsonl"), limit=3)] == [0, 1, 2]


@pytest.mark.parametrize("tag, name", [("py", "python"), ("C++", "cpp"), ("ts", "typescript"), ("shell", "bash"),
                                       ("output", None), ("", None), ("golang", "go")])
def test_language_names(tag, name):
    assert language_name(tag) == name


def test_extraction_keeps_defining_blocks_and_skips_example_calls_and_output():
    preset = require_preset("magicoder-oss-instruct")
    duration = map_row(rows("magicoder.jsonl")[0], preset)
    found = extract_solution(duration.messages, duration.lang)
    assert found.language == "python" and found.blocks == 3
    assert found.code.startswith("import re\n\n\ndef parse_duration(text):") and "print" not in found.code
    cpp = map_row(rows("magicoder.jsonl")[3], preset)
    assert extract_solution(cpp.messages, cpp.lang).language == "cpp"
    prose = map_row(rows("magicoder.jsonl")[8], preset)
    assert extract_solution(prose.messages, prose.lang).code is None


def test_extraction_reads_the_last_answer_with_code_of_a_chat():
    chat = map_row(rows("code_feedback.jsonl")[0], require_preset("code-feedback"))
    found = extract_solution(chat.messages)
    assert found.language == "python" and "def running_max" in found.code


def test_an_unfenced_python_answer_is_its_own_solution():
    messages = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "def f(x):\n    return x + 1"}]
    assert extract_solution(messages).code == "def f(x):\n    return x + 1"


def test_the_cli_lists_the_presets():
    from cli import build_parser

    parser = build_parser()
    action = next(a for a in parser._subparsers._group_actions[0].choices["import"]._actions
                  if a.dest == "preset")
    assert tuple(action.choices) == tuple(PRESETS)
