"""Asking the teacher a round of requests at once (a remote server sees them concurrently, the bundled one one
after another), and the request parameters and token counts the generation stages share."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from resources.llm import ChatRequest, Completion, TeacherClient, TeacherError


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
