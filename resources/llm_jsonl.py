"""`crucible teacher ask`: a JSONL file of chat requests in, a JSONL file of answers out, resumable.

Rows are appended to the output as they finish (each after its response is in the cache), so a run killed at any
point leaves a valid prefix; a rerun keeps the rows already there, drops a torn last line, and asks only for the
missing ones (and those it asks again are served from the cache when the server had already answered them).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from resources.llm import ChatRequest, TeacherClient, TeacherError
from resources.progress import activity


class InputError(ValueError):
    """A malformed input row; the message names the file and line."""


def read_requests(path: Path) -> tuple[list[ChatRequest], list[str]]:
    """Valid requests, and one message per malformed line."""
    requests, problems, seen = [], [], set()
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                requests.append(_request(json.loads(line), seen))
            except (json.JSONDecodeError, InputError, TypeError, ValueError) as exc:
                problems.append(f"{path}:{number}: {exc}; expected {{\"id\", \"messages\": [...]}}")
    return requests, problems


def _request(row, seen: set) -> ChatRequest:
    if not isinstance(row, dict):
        raise InputError("row is not a JSON object")
    if "id" not in row:
        raise InputError("row has no 'id'")
    rid = str(row["id"])
    if rid in seen:
        raise InputError(f"duplicate id {rid!r}")
    messages = row.get("messages")
    if not isinstance(messages, list) or not messages or not all(
            isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
            for m in messages):
        raise InputError("'messages' must be a non-empty list of {\"role\", \"content\"} strings")
    seen.add(rid)
    kwargs = {k: row[k] for k in ("temperature", "max_tokens", "prompt_version") if row.get(k) is not None}
    return ChatRequest(rid, messages, **kwargs)


def finished_ids(path: Path) -> set[str]:
    """Ids already answered in `path`; a torn last line (a run killed mid-write) is cut off the file."""
    if not path.exists():
        return set()
    data = path.read_bytes()
    keep = data.rfind(b"\n") + 1
    if keep != len(data):
        with path.open("r+b") as handle:
            handle.truncate(keep)
    done = set()
    for line in data[:keep].splitlines():
        try:
            done.add(str(json.loads(line)["id"]))
        except (ValueError, KeyError, TypeError):
            continue
    return done


async def ask_file(client: TeacherClient, input_path: Path, output_path: Path, log=sys.stderr) -> int:
    """Answer every request in `input_path` not yet in `output_path`. Returns the number of failures."""
    requests, problems = read_requests(input_path)
    for problem in problems:
        print(f"crucible: skipped {problem}", file=log)
    done = finished_ids(output_path)
    todo = [r for r in requests if r.id not in done]
    output_path.parent.mkdir(parents=True, exist_ok=True)
    failures = len(problems)
    with output_path.open("a", encoding="utf-8") as out, activity(f"{client.model}: answers"):
        async for item in client.iter_complete(todo):  # the client's bar counts them (`crucible` on a terminal)
            if isinstance(item, TeacherError):
                failures += 1
                print(f"crucible: {item}", file=log)
                continue
            out.write(json.dumps(item.row(), ensure_ascii=False) + "\n")
            out.flush()
    totals = client.totals.as_dict()
    print(f"crucible: {len(done)} already done, {len(todo) - (failures - len(problems))} answered "
          f"({totals['cached']} from cache, {totals['retries']} retries), {failures} failed; "
          f"tokens in/out {totals['prompt_tokens']}/{totals['completion_tokens']}, cost ${totals['cost_usd']:.4f}",
          file=log)
    return failures


def run_ask(base_url: str, model: str, input_path: Path, output_path: Path, concurrency: int) -> int:
    client = TeacherClient(base_url, model, api_key=os.environ.get("OPENAI_API_KEY"), concurrency=concurrency)
    return asyncio.run(ask_file(client, input_path, output_path))
