"""Versioned prompt templates: `assets/prompts/<name>.v<N>.txt`.

A template is a chat: lines `<<<system>>>`, `<<<user>>>` and `<<<assistant>>>` start turns (a worked example is a
real user/assistant pair), `#` lines before the first turn are comments, and `{{name}}` is replaced by a variable.
The version recorded in every row is `<name>.v<N>@<sha256 of the file, 8 hex>`, so an edited file is visible in the
data even if someone forgets to bump N.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

PROMPTS_DIR = Path(__file__).parent / "prompts"
TURN = re.compile(r"^<<<(system|user|assistant)>>>\s*$", re.M)
VARIABLE = re.compile(r"\{\{(\w+)\}\}")


class PromptError(ValueError):
    """A template that is missing, malformed, or rendered with missing variables."""


@dataclass(frozen=True)
class Prompt:
    name: str
    version: str
    turns: tuple[tuple[str, str], ...]  # (role, template text)

    @property
    def variables(self) -> set[str]:
        return {v for _, text in self.turns for v in VARIABLE.findall(text)}

    def render(self, **values: str) -> list[dict]:
        missing = self.variables - set(values)
        if missing:
            raise PromptError(f"prompt {self.version}: missing variables {sorted(missing)}")
        # A function replacement: values are inserted verbatim (backslashes and braces in code stay as they are).
        return [{"role": role, "content": VARIABLE.sub(lambda m: str(values[m.group(1)]), text)}
                for role, text in self.turns]


@cache
def load_prompt(name: str, version: int = 1) -> Prompt:
    path = PROMPTS_DIR / f"{name}.v{version}.txt"
    if not path.is_file():
        raise PromptError(f"prompt template {path} does not exist; see {PROMPTS_DIR} for the available ones")
    raw = path.read_text(encoding="utf-8")
    parts = TURN.split(raw)
    if len(parts) < 3:
        raise PromptError(f"prompt template {path} has no <<<system>>>/<<<user>>>/<<<assistant>>> turn")
    turns = tuple((parts[i], parts[i + 1].strip("\n")) for i in range(1, len(parts), 2))
    digest = hashlib.sha256(raw.encode()).hexdigest()[:8]
    return Prompt(name, f"{name}.v{version}@{digest}", turns)
