"""The current teacher: which model generates the next round of data (AutoCoder's self-learning stage).

    state = read_teacher_state(home)        # None until the first decision: the configured teacher, round 1
    state.round, state.model, state.role    # 3, "cpu-smollm2-1a2b3c4d-5e6f7a8b.q8_0", "student"
    write_teacher_state(home, state)        # the `teacher` asset (assets/models/teacher.py) after each decision

The file is $CRUCIBLE_HOME/teacher.json. TeacherLLM (resources/llm.py) follows it: while it names a promoted student,
every teacher request goes to that student, served on this machine (its GGUF through the same llama.cpp server as the
bundled teacher) or through a configured server command (vLLM on a GPU machine). The `teacher` asset's
materializations are the history of these states: the lineage of teachers.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from resources.home import Home

CONFIGURED, STUDENT = "configured", "student"  # roles: the teacher set in TeacherLLM, or a promoted checkpoint
GGUF, COMMAND = "gguf", "command"  # how a promoted student is served


class TeacherStateError(ValueError):
    """teacher.json cannot be read; one line naming the file and what to do."""


@dataclass(frozen=True)
class TeacherState:
    round: int  # the generation round this teacher produces (the first round is 1)
    role: str  # configured | student
    model: str  # how generated rows name it (their teacher_model)
    since_round: int  # the round this model became the teacher
    reason: str  # why: the decision that put it there
    checkpoint: str | None = None  # a student's checkpoint folder
    checkpoint_sha256: str | None = None  # of its model files (resources/files.model_files_sha256)
    serving: str | None = None  # gguf | command (students only)
    gguf: str | None = None  # the GGUF file llama.cpp serves (serving gguf)
    command: str | None = None  # the server command template (serving command)
    decided_at: str | None = None

    def __post_init__(self) -> None:
        if self.round < 1 or self.since_round < 1 or self.since_round > self.round:
            raise ValueError(f"teacher state: round {self.round} and since_round {self.since_round} must satisfy "
                             "1 <= since_round <= round")
        if self.role not in (CONFIGURED, STUDENT):
            raise ValueError(f"teacher state: role must be {CONFIGURED} or {STUDENT}, got {self.role!r}")
        if self.role == STUDENT and not ((self.serving == GGUF and self.gguf)
                                         or (self.serving == COMMAND and self.command and self.checkpoint)):
            raise ValueError("teacher state: a promoted student needs serving 'gguf' with its gguf file, or "
                             "'command' with its command and checkpoint")

    @property
    def is_student(self) -> bool:
        return self.role == STUDENT

    def as_dict(self) -> dict:
        return asdict(self)


def read_teacher_state(home: Home) -> TeacherState | None:
    """The current teacher, or None when no decision has been recorded (the configured teacher, round 1)."""
    path = home.teacher_state
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        known = {f.name for f in fields(TeacherState)}
        return TeacherState(**{k: v for k, v in data.items() if k in known})
    except (OSError, ValueError, TypeError) as exc:
        raise TeacherStateError(f"{path} is not a teacher state ({' '.join(str(exc).split())}): rematerialize the "
                                "`teacher` asset, or delete the file to go back to the configured teacher") from exc


def write_teacher_state(home: Home, state: TeacherState) -> Path:
    """Replace teacher.json atomically (a reader sees the old state or the new one, never half of one)."""
    path = home.teacher_state
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".teacher-", suffix=".json")
    with os.fdopen(fd, "w") as handle:
        json.dump(state.as_dict(), handle, indent=2)
        handle.write("\n")
    Path(tmp).replace(path)
    return path


def current_round(home: Home) -> int:
    """The round the next generation belongs to."""
    state = read_teacher_state(home)
    return state.round if state else 1


def with_round(rows: list[dict], home: Home) -> list[dict]:
    """Generated rows stamped with the round they are generated in (the current teacher's, like their
    teacher_model)."""
    round_ = current_round(home)
    return [{**row, "round": round_} for row in rows]
