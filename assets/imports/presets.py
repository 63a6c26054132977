"""How the rows of a published instruction dataset map onto a problem and its answer.

    preset = require_preset("magicoder-oss-instruct").with_columns({"instruction": "prompt"})
    mapped = map_row(row, preset)          # MappedRow, or Skipped(reason, detail) for a broken row
    check_columns(first_row, preset, "data.jsonl")   # one-line ImportError naming a mapped column the data lacks

A preset names the columns of one dataset as published: a problem/answer pair (Magicoder-OSS-Instruct-75K's
`problem` and `solution`, with `lang` and `seed`; evol-codealpaca-v1's `instruction` and `output`) or a chat
(Code-Feedback's `messages`, a list of {role, content}). `generic` takes `instruction`/`response` or `messages`,
whichever the data has; any preset's columns can be renamed with `--columns ROLE=COLUMN`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from assets.schemas import IMPORT_METHOD_PREFIX

ROLES = ("instruction", "response", "messages", "lang", "seed", "id")  # what a column can be mapped to
CHAT_ROLES = ("system", "user", "assistant", "tool")


class BadImport(ValueError):
    """An import that cannot start: a bad preset, mapping or file. The message is one line naming the input."""


@dataclass(frozen=True)
class Preset:
    name: str
    license: str | None  # the published dataset's licence (SPDX id), None when its card names none we could check
    instruction: str | None = None  # pair shape: the problem statement
    response: str | None = None  # pair shape: the answer (prose and fenced code)
    messages: str | None = None  # chat shape: a list of {role, content}
    lang: str | None = None  # the answer's programming language, when the data names it
    seed: str | None = None  # the code snippet the problem was made from (OSS-Instruct)
    id: str | None = None  # the row's own id

    @property
    def method(self) -> str:
        return f"{IMPORT_METHOD_PREFIX}{self.name}"

    def columns(self) -> dict[str, str]:
        """role -> column, for the roles this preset maps."""
        return {role: getattr(self, role) for role in ROLES if getattr(self, role)}

    def with_columns(self, overrides: dict[str, str]) -> Preset:
        unknown = sorted(set(overrides) - set(ROLES))
        if unknown:
            raise BadImport(f"--columns {unknown[0]}=...: {unknown[0]!r} is not a column role; use one of "
                               f"{', '.join(ROLES)} (e.g. --columns instruction=prompt response=answer)")
        return dataclasses.replace(self, **overrides)


PRESETS = {
    # ise-uiuc/Magicoder-OSS-Instruct-75K (MIT): lang, raw_index, index, seed, openai_fingerprint, problem, solution
    "magicoder-oss-instruct": Preset("magicoder-oss-instruct", "MIT", instruction="problem", response="solution",
                                     lang="lang", seed="seed", id="index"),
    # theblackcat102/evol-codealpaca-v1: instruction, output
    "evol-codealpaca": Preset("evol-codealpaca", None, instruction="instruction", response="output"),
    # m-a-p/Code-Feedback (Apache-2.0): id, messages
    "code-feedback": Preset("code-feedback", "Apache-2.0", messages="messages", id="id"),
    # anything else: instruction/response pairs or a messages chat (generic_shape picks by the first row)
    "generic": Preset("generic", None, instruction="instruction", response="response"),
}


def require_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise BadImport(f"--preset {name!r} is not known; use one of {', '.join(PRESETS)}")
    return PRESETS[name]


def generic_shape(preset: Preset, first_row: dict) -> Preset:
    """`generic` on a chat dataset: a `messages` column and no instruction column means the chat shape."""
    if preset.name == "generic" and not preset.messages and preset.instruction not in first_row \
            and "messages" in first_row:
        return dataclasses.replace(preset, instruction=None, response=None, messages="messages")
    return preset


def check_columns(first_row: dict, preset: Preset, data: str) -> None:
    """A one-line BadImport when a column the preset maps (other than the optional lang, seed and id) is missing."""
    required = ("messages",) if preset.messages else ("instruction", "response")
    for role in required:
        column = getattr(preset, role)
        if column is None:
            raise BadImport(f"preset {preset.name}: no column is mapped to {role}; pass --columns {role}=<column>")
        if column not in first_row:
            raise BadImport(f"{data}: column {column!r} ({role} of preset {preset.name}) is not in the data; its "
                               f"columns are {sorted(first_row)}; pass --columns {role}=<column>")


@dataclass(frozen=True)
class MappedRow:
    instruction: str  # the first user turn
    messages: list[dict]  # the conversation as published (pairs: [user, assistant])
    lang: str | None
    seed: str | None
    row_id: str | None


@dataclass(frozen=True)
class Skipped:
    reason: str
    detail: str = ""


def _text(value) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def chat(value) -> list[dict] | Skipped:
    """A published chat as [{role, content}], or why it is not one."""
    if not isinstance(value, (list, tuple)) or not value:
        return Skipped("malformed_messages", f"expected a list of {{role, content}}, got {type(value).__name__}")
    turns = []
    for index, turn in enumerate(value):
        if not isinstance(turn, dict) or "role" not in turn or "content" not in turn:
            return Skipped("malformed_messages", f"turn {index} is not a {{role, content}} mapping")
        role = str(turn["role"]).lower()
        role = {"human": "user", "gpt": "assistant"}.get(role, role)
        if role not in CHAT_ROLES or not isinstance(turn["content"], str):
            return Skipped("malformed_messages", f"turn {index}: role {turn['role']!r} or its content is not usable")
        turns.append({"role": role, "content": turn["content"]})
    return turns


def map_row(row: dict, preset: Preset) -> MappedRow | Skipped:
    """The row as a problem and its conversation, or why it cannot be one (a counted reject reason)."""
    if preset.messages:
        turns = chat(row.get(preset.messages))
        if isinstance(turns, Skipped):
            return turns
        user = next((t["content"] for t in turns if t["role"] == "user" and _text(t["content"])), None)
        if user is None:
            return Skipped("missing_instruction", "no user turn with text")
        if not any(t["role"] == "assistant" and _text(t["content"]) for t in turns):
            return Skipped("missing_response", "no assistant turn with text")
    else:
        user, answer = _text(row.get(preset.instruction)), _text(row.get(preset.response))
        if user is None:
            return Skipped("missing_instruction", f"column {preset.instruction!r} is empty")
        if answer is None:
            return Skipped("missing_response", f"column {preset.response!r} is empty")
        turns = [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]
    row_id = row.get(preset.id) if preset.id else None
    return MappedRow(user.strip(), turns, _text(row.get(preset.lang)) if preset.lang else None,
                     _text(row.get(preset.seed)) if preset.seed else None,
                     None if row_id is None else str(row_id))
