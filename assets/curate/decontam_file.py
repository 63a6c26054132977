"""`crucible decontam`: flag the rows of a JSONL file ({"id", "instruction", "solution"?} per line) that are HumanEval
or MBPP problems, with the same layers and calibrated thresholds as the decontaminated_dialogues asset, and write one
verdict per row ({"id", "contaminated", "benchmark", "task_id", "score", "method"}).

Rows without a function to run get one written by a solver model (assets/curate/decontam_solver.py) when one is
given, so the execution layer can judge them too. Every problem with the input or the set-up is a `DecontamError`
with a one-line message naming the input and what to do; nothing is written then.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

from assets.curate.decontam_layers import (
    EXECUTION,
    LAYERS,
    BenchmarkIndex,
    DecontamSettings,
    needs_solution,
    scan,
    verdicts,
)
from assets.curate.decontam_solver import solver_session
from eval.benchmarks import load_benchmarks
from resources.bundled_models import LocalTeacherError
from resources.embedder import TextEmbedder
from resources.files import jsonl_lines
from resources.progress import activity
from resources.progress import say as progress_line
from resources.sandbox import Limits, SandboxPool, SandboxUnavailable
from resources.teacher_endpoint import TeacherEndpoint
from resources.verdict_cache import CachedRunner


class DecontamError(ValueError):
    """Bad input or an unusable set-up; the message is one line meant for the user."""


def parse_layers(text: str) -> tuple[str, ...]:
    layers = tuple(x.strip() for x in text.split(",") if x.strip())
    if not layers or set(layers) - set(LAYERS):
        raise DecontamError(f"--layers {text!r}: give a comma-separated subset of {','.join(LAYERS)}")
    return layers


def require_file(path: Path) -> None:
    if not path.is_file():
        raise DecontamError(f"--input {path}: no such file; give a JSONL file with one "
                            "{\"id\", \"instruction\", \"solution\"?} per line")


def read_rows(path: Path) -> list[dict]:
    """The input rows, each checked; the first bad line is a DecontamError naming it."""
    require_file(path)
    rows = []
    for number, row, error in jsonl_lines(path):
        if error:
            raise DecontamError(f"--input {path} line {number} is not valid JSON ({error}); fix or remove it")
        if not isinstance(row, dict) or "id" not in row or not isinstance(row.get("instruction"), str):
            raise DecontamError(f"--input {path} line {number} needs an \"id\" and a string \"instruction\" "
                                "(\"solution\" is optional)")
        if row.get("solution") is not None and not isinstance(row["solution"], str):
            raise DecontamError(f"--input {path} line {number}: \"solution\" must be a string or null")
        rows.append(row)
    return rows


def decontaminate_file(input_path: Path, output_path: Path, layers: str, backend: str, workers: int,
                       solver: TeacherEndpoint | None, online: list[str],
                       say: Callable[[str], None] = print) -> tuple[int, int]:
    """Scan `input_path`, write the verdicts to `output_path`; (rows flagged, rows read). `solver` None: rows
    without a function are judged by the text layers only."""
    logging.basicConfig(level=logging.WARNING, format="crucible: %(message)s")
    require_file(input_path)
    chosen = parse_layers(layers)
    rows = read_rows(input_path)
    try:
        settings = DecontamSettings(layers=chosen)
    except ValueError as exc:
        raise DecontamError(str(exc)) from exc
    unsolved = sum(needs_solution(row) for row in rows) if EXECUTION in chosen else 0
    with ExitStack() as stack:
        run_batch = None
        if EXECUTION in chosen:
            try:
                pool = SandboxPool(backend, workers, Limits(timeout_s=settings.exec_timeout_s, memory_mb=512))
            except (SandboxUnavailable, ValueError) as exc:
                raise DecontamError(f"{exc} (or run without the execution layer: --layers ngram,embedding)") from exc
            stack.callback(pool.close)
            run_batch = CachedRunner(pool).run
        solve = None
        if unsolved and solver is not None:
            try:
                solve = stack.enter_context(solver_session(solver))
            except LocalTeacherError as exc:
                raise DecontamError(f"--solver {solver.bundled}: {exc} (or pass --solver none to judge the "
                                    f"{unsolved} rows without a function by the text layers only)") from exc
            say(f"crucible decontam: {unsolved} rows have no function to run; {solve.client.model} writes one for "
                "each")
        try:
            embedder = TextEmbedder()
            items = load_benchmarks(online=online)
            progress_line(f"crucible decontam: indexing {len(items)} benchmark problems")
            index = BenchmarkIndex.for_settings(items, embedder.encode, settings)
            progress_line(f"crucible decontam: scanning {len(rows)} rows ({', '.join(chosen)})")
            with activity("solver: functions for rows without one"):  # names the solver's request bars
                found = scan(index, rows, settings, embedder.encode, run_batch, solve)
        except (FileNotFoundError, ValueError) as exc:
            raise DecontamError(str(exc)) from exc
    output_path.parent.mkdir(parents=True, exist_ok=True)
    with output_path.open("w", encoding="utf-8") as out:
        for row, match in zip(rows, verdicts(len(rows), found)):
            out.write(json.dumps({
                "id": row["id"], "contaminated": match is not None,
                "benchmark": match.benchmark if match else None, "task_id": match.task_id if match else None,
                "score": match.score if match else None, "method": match.layer if match else None,
            }) + "\n")
    return len({m.row for m in found}), len(rows)
