"""teacher_selection's held-out loop (answers, sandbox runs, execution feedback as in the training dialogues) on
the real bwrap sandbox, and what it stores for a decision."""

import json

import pytest

from assets.models.teacher_selection import (
    EXEC_FEEDBACK,
    SINGLE,
    SelectionConfig,
    compare_modes,
    first_turns,
    selection_row,
    solved_at,
    validate_config,
)
from eval.scoring import SandboxRunner
from tests.dialogue_rows import dialogue_row


class FixesAfterFeedback:
    """Answers `return None` first; after an "Execution result:" turn, the row's solution. Records every chat."""

    def __init__(self, rows, never: set[str] = frozenset()) -> None:
        self.solutions = {r["instruction"]: r["solution"] for r in rows}
        self.never = never
        self.chats: list[list[dict]] = []

    def generate(self, requests, prompt_version=None):
        out = []
        for request in requests:
            self.chats.append([dict(m) for m in request.messages])
            instruction = next(m["content"] for m in request.messages if m["role"] == "user")
            fn = instruction.split("`")[1].split("(")[0]
            fixed = any(m["content"].startswith("Execution result:") for m in request.messages if m["role"] == "user")
            body = self.solutions[instruction] if fixed and instruction not in self.never else \
                f"def {fn}(*args):\n    return None\n"
            out.append(f"```python\n{body}```")
        return out


def test_held_out_answers_get_the_failing_runs_output_and_answer_again(bwrap_pool2):
    rows = [{**dialogue_row(i), "id": f"row{i}"} for i in range(3)]
    model = FixesAfterFeedback(rows, never={rows[2]["instruction"]})
    runner = SandboxRunner(bwrap_pool2, use_cache=False)
    solved = solved_at(model, rows, runner, feedback_rounds=2)
    assert solved == {"row0": 1, "row1": 1, "row2": None}
    # Each row was asked its first user turn (the dialogue's own question), then again with the run's output.
    assert [m["role"] for m in model.chats[0]] == ["user"] and model.chats[0][0]["content"] == rows[0]["instruction"]
    feedback = model.chats[3][-1]["content"]
    assert feedback.startswith("Execution result:\n```\nExit status 1.") and "AssertionError" in feedback
    assert len(model.chats) == 3 + 3 + 1  # row2 asked once more; the others stopped after passing
    assert solved_at(model, rows, runner, feedback_rounds=0) == {"row0": None, "row1": None, "row2": None}


def test_modes_read_the_same_answers_differently():
    student = {f"p{i}": 0 if i < 3 else 1 for i in range(6)}  # three at once, three after feedback
    teacher = {f"p{i}": None if i < 5 else 0 for i in range(6)}
    modes = compare_modes(student, teacher, SelectionConfig())
    assert modes[SINGLE].student_passes == 3 and modes[SINGLE].decision == "teacher"
    assert modes[EXEC_FEEDBACK].student_passes == 6 and modes[EXEC_FEEDBACK].student_only == 5
    assert modes[EXEC_FEEDBACK].decision == "student"
    row = selection_row(2, {"checkpoint": "/ck", "dataset_version": "v1"}, "bundled:x", SelectionConfig(), modes,
                        [{"id": "p0"}])
    assert row["round"] == 2 and row["mode"] == EXEC_FEEDBACK and row["selected"] == "student"
    assert row["next_teacher"] == "/ck" and json.loads(row["by_mode"])[SINGLE]["decision"] == "teacher"
    single = selection_row(2, {"checkpoint": "/ck", "dataset_version": "v1"}, "bundled:x",
                           SelectionConfig(decide_on=SINGLE), modes, [])
    assert single["selected"] == "teacher" and single["next_teacher"] == "bundled:x"


def test_first_turns_keep_a_system_turn_and_stop_at_the_question():
    messages = [{"role": "system", "content": "s"}, {"role": "user", "content": "q"},
                {"role": "assistant", "content": "a"}]
    assert first_turns(messages) == messages[:2]


@pytest.mark.parametrize(("settings", "message"), [
    ({"modes": ["pass_at_k"]}, "use one or both"),
    ({"modes": [SINGLE], "decide_on": EXEC_FEEDBACK}, "not among modes"),
])
def test_bad_selection_settings_fail_in_one_line(settings, message):
    import dagster as dg

    with pytest.raises(dg.Failure, match=message):
        validate_config(SelectionConfig(**settings))
