"""What the generation stages share: their frozen configs, the config fingerprint, and asking the teacher a round of
requests at once (so a remote server sees them concurrently and the offline one one after another)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path

import dagster as dg
from pydantic import Field

from resources.home import crucible_home
from resources.llm import ChatRequest, Completion, TeacherClient, TeacherError


class ProblemsConfig(dg.Config):
    """OSS-Instruct problem generation (the questioner role)."""

    max_turns: int = Field(default=3, description="Questioner replies per seed: the first plus repairs after the "
                                                  "reference failed its own tests.")
    temperature: float = Field(default=0.2, description="Questioner sampling temperature.")
    max_tokens: int = Field(default=1024, description="Reply length cap, tokens.")
    min_asserts: int = Field(default=3, description="Tests need at least this many assert statements.")
    prompt_version: int = Field(default=1, description="assets/prompts/oss_instruct.v<N>.txt")
    repair_prompt_version: int = Field(default=1, description="assets/prompts/problem_repair.v<N>.txt")
    reference_outputs: bool = Field(default=True, description="When the repairs run out and only expected values "
                                                              "disagree, take them from the reference's outputs "
                                                              "(tests_source=reference_outputs); such a problem "
                                                              "is kept only if the programmer's first answer "
                                                              "agrees, an independent check (CodeT-style).")
    seed: int | None = Field(default=0, description="Sampling seed sent with every request (OpenAI, vLLM and "
                                                    "llama.cpp honour it), so a run can be repeated.")
    max_problems: int | None = Field(default=None, description="Use at most this many seeds of the partition "
                                                               "(in seed order); empty: all.")


class DialoguesConfig(dg.Config):
    """AIEV-Instruct dialogues: the programmer answers, the sandbox judges, the questioner gives feedback."""

    max_turns: int = Field(default=4, description="Programmer answers per problem, the first one included.")
    feedback_mode: str = Field(default="execution", description="execution: the questioner turns the error into a "
                                                                "hint; human_sim: a simulated user guides without "
                                                                "code (Code-Feedback).")
    execution_role: str = Field(default="user", description="user: the execution result and the feedback form one "
                                                            "user turn with an 'Execution result:' prefix; tool: the "
                                                            "result is a tool turn, the feedback a user turn.")
    programmer_model: str | None = Field(default=None, description="Model name for the programmer role on the "
                                                                   "teacher's server; empty: the teacher's model.")
    programmer_temperature: float = Field(default=0.0, description="Programmer sampling temperature, first answer.")
    revision_temperature: float = Field(default=0.4, description="Programmer sampling temperature for revisions: "
                                                                 "greedy decoding tends to repeat a failed answer.")
    questioner_temperature: float = Field(default=0.2, description="Feedback sampling temperature.")
    max_tokens: int = Field(default=1024, description="Reply length cap, tokens.")
    seed: int | None = Field(default=0, description="Sampling seed sent with every request.")
    programmer_prompt_version: int = Field(default=1, description="assets/prompts/programmer.v<N>.txt")
    feedback_prompt_version: int = Field(default=1, description="assets/prompts/feedback_<mode>.v<N>.txt")


FEEDBACK_MODES = ("execution", "human_sim")
EXECUTION_ROLES = ("user", "tool")
EXECUTION_PREFIX = "Execution result:"


def fingerprint(*parts) -> str:
    """12 hex of the sha256 of the canonical JSON of the parts (configs as dicts, model names, prompt versions)."""
    canonical = json.dumps([p.model_dump() if hasattr(p, "model_dump") else p for p in parts], sort_keys=True,
                           default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def configs_dir() -> Path:
    return crucible_home() / "configs"


def record_config(fp: str, **parts) -> str:
    """Keep what `fp` fingerprints as $CRUCIBLE_HOME/configs/<fp>.json, so a row's config_fingerprint can be turned
    back into its settings (the dataset card prints them). Idempotent; returns `fp`."""
    path = configs_dir() / f"{fp}.json"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {k: v.model_dump() if hasattr(v, "model_dump") else v for k, v in parts.items()}
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str))
        os.replace(tmp, path)
    return fp


def read_config(fp: str) -> dict | None:
    """What record_config kept for `fp`, with fingerprints it names expanded recursively; None when unknown."""
    path = configs_dir() / f"{fp}.json"
    if not path.is_file():
        return None
    payload = json.loads(path.read_text())
    return {k: (read_config(v) or v) if k.endswith("_fingerprint") else v for k, v in payload.items()}


def ask_round(client: TeacherClient, requests: Iterable[ChatRequest]) -> dict[str, Completion | TeacherError]:
    """Every request answered (or its TeacherError), by id. Answers are cached, so a rerun of a round is free."""
    async def collect() -> dict:
        out: dict = {}
        async for item in client.iter_complete(list(requests)):
            if isinstance(item, TeacherError):
                out[item.request_id] = item
            else:
                out[item.id] = item
        return out

    return asyncio.run(collect())


def sampling(seed: int | None, **extra) -> dict:
    """Extra request parameters: the seed when one is set, plus `extra`."""
    return {**({"seed": seed} if seed is not None else {}), **extra}


def tokens(completion: Completion) -> tuple[int, int]:
    usage = completion.usage or {}
    return int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
