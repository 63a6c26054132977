"""Versioned prompt templates: `<dir>/<name>.v<N>.txt`; evaluation's live in eval/prompts, generation's in
assets/prompts (assets/prompts/__init__.py reads them through this module, since assets/ may import eval/ but not
the other way round).

Lines `<<<system>>>`, `<<<user>>>` and `<<<assistant>>>` start turns, `#` lines before the first turn are comments, and
`{{name}}` is replaced by a variable. A template's version is `<name>.v<N>@<sha256 of the file, 8 hex>`, recorded in
every score's manifest, so an edited file shows even when N was not bumped.
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


class TemplateError(ValueError):
    """A template that is missing, malformed, or rendered without all its variables."""


@dataclass(frozen=True)
class Template:
    name: str
    version: str
    turns: tuple[tuple[str, str], ...]  # (role, text with {{variables}})

    @property
    def variables(self) -> set[str]:
        return {v for _, text in self.turns for v in VARIABLE.findall(text)}

    def render(self, **values: str) -> list[dict]:
        missing = self.variables - set(values)
        if missing:
            raise TemplateError(f"template {self.version}: missing variables {sorted(missing)}")
        # A function replacement inserts values verbatim: backslashes and braces in code stay as they are.
        return [{"role": role, "content": VARIABLE.sub(lambda m: str(values[m.group(1)]), text)}
                for role, text in self.turns]


@cache
def load_template(name: str, version: int = 1, directory: Path = PROMPTS_DIR) -> Template:
    path = Path(directory) / f"{name}.v{version}.txt"
    if not path.is_file():
        raise TemplateError(f"prompt template {path} does not exist; see {directory} for the available ones")
    raw = path.read_text(encoding="utf-8")
    parts = TURN.split(raw)
    if len(parts) < 3:
        raise TemplateError(f"prompt template {path} has no <<<system>>>/<<<user>>>/<<<assistant>>> turn")
    turns = tuple((parts[i], parts[i + 1].strip("\n")) for i in range(1, len(parts), 2))
    return Template(name, f"{name}.v{version}@{hashlib.sha256(raw.encode()).hexdigest()[:8]}", turns)
