"""What every method module receives and returns, and the row it builds.

    run(inputs: MethodInputs, config: <the method's config>, ctx: MethodContext) -> MethodResult

A method verifies every row it keeps in the sandbox (through `ctx.runner`, cached) and keeps every drop as a reject
row with its reason, counted in `MethodResult.counts`. Rows follow schemas.DIALOGUES; a row may carry a transient
`task_messages` key (the conversation the programmer is asked to continue) that difficulty labelling samples
answers for; `frame()` drops it.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from assets.generate.config import LANGUAGE
from resources.home import Home
from resources.llm import TeacherClient
from resources.verdict_cache import CachedRunner

PROVENANCE_KEYS = ("seed_id", "source", "path", "license")


@dataclass
class MethodContext:
    teacher: TeacherClient  # the questioner role: writes problems, tests, feedback
    programmer: TeacherClient  # answers problems (same server; the model may differ)
    runner: CachedRunner
    home: Home
    source: str  # the seed-source partition the method runs on
    log: object | None = None  # a logger with .info (Dagster's context.log), or None
    encode: Callable[[list[str]], np.ndarray] | None = None  # the embedder: normalised vectors, one per text

    def info(self, message: str) -> None:
        if self.log is not None:
            self.log.info(message)


@dataclass
class MethodInputs:
    seeds: list[dict] = field(default_factory=list)  # seed_snippets rows of the source (schemas.SEEDS)
    problems: list[dict] = field(default_factory=list)  # verified problems of the source (schemas.PROBLEMS)
    dialogues: list[dict] = field(default_factory=list)  # verified dialogues of the parent methods (schemas.DIALOGUES)


@dataclass
class MethodResult:
    rows: list[dict]  # kept, verified dialogues (schemas.DIALOGUES)
    rejects: list[dict]  # schemas.DIALOGUE_REJECTS: the row as far as it got, plus `reason`
    counts: Counter  # reject reason -> rows
    prompt_tokens: int = 0
    completion_tokens: int = 0
    extra: dict = field(default_factory=dict)  # method-specific figures for the asset's metadata


def dialogue_id(method: str, parent: str, config_fp: str) -> str:
    return hashlib.sha256(f"{method}:{parent}:{config_fp}".encode()).hexdigest()[:16]


def provenance(item: dict) -> dict:
    """The seed provenance of a seed, problem or dialogue row."""
    return {**{k: item.get(k) for k in PROVENANCE_KEYS}, "language": item.get("language") or LANGUAGE}


def answer_text(solution: str, lead: str = "", fence: str = "python") -> str:
    """An assistant turn holding `solution` as one fenced block (Python's by default), after an optional sentence."""
    block = f"```{fence}\n{solution.strip()}\n```"
    return f"{lead.strip()}\n\n{block}" if lead.strip() else block
