"""Imported dataset rows as dialogues: mapping, code extraction and (when asked) verification, with every row that
does not make it kept as a reject with its reason.

    result = import_rows(spec, verify_config, verifier_factory, info)
    result.rows, result.rejects, result.counts, result.stages

Each row becomes a schemas.DIALOGUES row: the conversation as published (`messages`), its first user turn as the
`instruction`, the solution extracted from the last answer with code (`solution`, `language`), the dataset's seed
snippet when it has one (`seed`), and provenance: `source` (the import's name), `path` (the file or dataset id),
`seed_id` (`<name>:<the row's own id or index>`), the licence, and the method `import:<preset>`. Verified rows add the
tests the teacher wrote (`tests_source` "teacher") and the sandbox verdicts.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from assets.fingerprints import fingerprint
from assets.generate.programs import trivial_mutant
from assets.generate.questioner import problem_id
from assets.generate.replies import parses
from assets.generate.seed_sources import SourceSpec
from assets.imports.extract import PYTHON, extract_solution
from assets.imports.presets import MappedRow, Skipped, check_columns, generic_shape, map_row, require_preset
from assets.imports.reader import read_rows
from assets.imports.verify import ImportItem, ImportVerifier

TEACHER_TESTS = "teacher"  # tests_source of an imported row whose tests the teacher wrote at import


@dataclass
class ImportResult:
    rows: list[dict] = field(default_factory=list)
    rejects: list[dict] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)  # reject reasons
    stages: dict[str, int] = field(default_factory=dict)  # rows_in, mapped, extracted, verified, imported
    languages: Counter = field(default_factory=Counter)  # of the mapped rows
    teacher_model: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0


def _row_id(source: str, index: int, raw: dict) -> str:
    blob = json.dumps(raw, sort_keys=True, default=str)
    return hashlib.sha256(f"import:{source}:{index}:{blob}".encode()).hexdigest()[:16]


def dialogue_row(spec: SourceSpec, method: str, index: int, raw: dict, mapped: MappedRow, config_fp: str) -> dict:
    extracted = extract_solution(mapped.messages, mapped.lang)
    assistant_turns = sum(1 for m in mapped.messages if m["role"] == "assistant")
    return {
        "dialogue_id": _row_id(spec.name, index, raw), "problem_id": problem_id(mapped.instruction, ""),
        "seed_id": f"{spec.name}:{mapped.row_id if mapped.row_id is not None else index}", "source": spec.name,
        "path": spec.dataset, "license": spec.license, "seed": mapped.seed, "method": method, "parent_id": None,
        "teacher_model": None, "programmer_model": None, "round": None, "prompt_version": None,
        "config_fingerprint": config_fp, "language": extracted.language, "feedback_mode": None,
        "instruction": mapped.instruction, "solution": extracted.code, "tests": None, "tests_source": None,
        "messages": mapped.messages, "turns": assistant_turns, "passed_turn": None, "verdicts": [],
    }


def _reject(row: dict, reason: str, detail: str, result: ImportResult) -> None:
    result.counts[reason] += 1
    result.rejects.append({**row, "reason": reason, "detail": detail[:500]})


def unverifiable(row: dict) -> tuple[str, str] | None:
    """Why a row's solution cannot be run against tests, or None when it can."""
    if row["solution"] is None:
        return "no_code", "the answer holds no code block"
    if row["language"] != PYTHON:
        return "language_not_runnable", f"{row['language']}: the sandbox verifies Python solutions"
    if not parses(row["solution"]):
        return "solution_syntax_error", "the extracted Python does not parse"
    if trivial_mutant(row["solution"]) is None:
        return "no_function_in_solution", "tests call a function, and the solution defines none"
    return None


def read_mapped(spec: SourceSpec, result: ImportResult, config_fp: str) -> list[dict]:
    """The source's rows as dialogue rows; rows that map to no problem go to the rejects."""
    preset = require_preset(spec.preset).with_columns(spec.columns or {})
    rows: list[dict] = []
    for index, raw in read_rows(spec.dataset, spec.limit, spec.split):
        if index == 0:
            preset = generic_shape(preset, raw)
            check_columns(raw, preset, spec.dataset)
        result.stages["rows_in"] = index + 1
        mapped = map_row(raw, preset)
        if isinstance(mapped, Skipped):
            _reject({"dialogue_id": _row_id(spec.name, index, raw), "source": spec.name, "path": spec.dataset,
                     "seed_id": f"{spec.name}:{index}", "method": preset.method, "config_fingerprint": config_fp},
                    mapped.reason, mapped.detail, result)
            continue
        rows.append(dialogue_row(spec, preset.method, index, raw, mapped, config_fp))
    result.stages.setdefault("rows_in", 0)
    return rows


def import_fingerprint(spec: SourceSpec, verify_config, teacher: str | None) -> str:
    """What the import's rows depend on: the source entry, and for verified rows the settings and the tests writer."""
    return fingerprint(dataclasses.asdict(spec), *((verify_config, teacher) if spec.verify == "tests" else ()))


def import_rows(spec: SourceSpec, verify_config, make_verifier: Callable[[], ImportVerifier], config_fp: str,
                info: Callable[[str], None] = print) -> ImportResult:
    """Read, map, extract and, when the source asks for it (`verify: tests`), verify the rows of an import source.
    `make_verifier` is called only when some row is to be verified (it may start the teacher)."""
    result = ImportResult()
    rows = read_mapped(spec, result, config_fp)
    result.languages = Counter(r["language"] or "none" for r in rows)
    result.stages["mapped"] = len(rows)
    result.stages["extracted"] = sum(1 for r in rows if r["solution"] is not None)
    if spec.verify == "none":
        result.rows = rows
        result.stages["imported"] = len(rows)
        info(f"import {spec.name}: {result.stages}")
        return result
    runnable = []
    for row in rows:
        why = unverifiable(row)
        if why:
            _reject(row, *why, result)
        else:
            runnable.append(row)
    if runnable:
        verifier = make_verifier()
        by_key = {r["dialogue_id"]: r for r in runnable}
        items = [ImportItem(row_key=r["dialogue_id"], instruction=r["instruction"], solution=r["solution"])
                 for r in runnable]
        kept = verifier.verify(items)
        for item in items:
            # teacher_model stays empty: the row's author is the published dataset's, the teacher only wrote tests
            by_key[item.key].update(prompt_version=verifier.versions, verdicts=item.verdicts, tests=item.tests,
                                    tests_source=TEACHER_TESTS if item.tests else None)
        for item, reason, detail in verifier.rejected:
            _reject(by_key[item.key], reason, detail, result)
        for item in kept:
            row = by_key[item.key]
            row["passed_turn"] = row["turns"]  # the published answer is the one that passes
            row["problem_id"] = problem_id(row["instruction"], item.tests)
            result.rows.append(row)
        result.teacher_model = verifier.client.model
        result.prompt_tokens = sum(i.prompt_tokens for i in items)
        result.completion_tokens = sum(i.completion_tokens for i in items)
    result.stages["verified"] = len(result.rows)
    result.stages["imported"] = len(result.rows)
    info(f"import {spec.name}: {result.stages}; rejected {dict(result.counts)}")
    return result
