"""`crucible import`: register an instruction dataset as an import source and run it through import, dedup and
decontamination, then summarise what each stage kept.

    summary = run_import(ImportRequest("magicoder-oss-instruct", "oss.jsonl", limit=300), teacher, sandbox,
                         embedder, home)

Everything that can be checked before a run is checked first, each failure one line (BadImport): the preset, the
column mapping against the data's first row, the sandbox backend. A source of the same name is replaced, and its
partition materialized again.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from assets.automation import import_job, source_name
from assets.generate.seed_sources import SourceError, parse_spec, register_source
from assets.imports.presets import BadImport, check_columns, generic_shape, require_preset
from assets.imports.reader import is_local, read_rows
from assets.keys import (
    CONTAMINATION_REPORT_TABLE,
    DECONTAMINATED_DIALOGUES,
    DEDUP_REJECTS_TABLE,
    DEDUPLICATED_DIALOGUES,
    IMPORT_REJECTS_TABLE,
    IMPORTED_DIALOGUES,
)
from assets.partitions import ROUND_SEPARATOR, add_seed_source
from assets.runs import run_job, run_metadata
from resources.dagster_home import persistent_instance
from resources.embedder import Embedder
from resources.home import Home
from resources.llm import TeacherLLM
from resources.sandbox import Sandbox, check_backend
from resources.store import read_table, table_partitions


@dataclass(frozen=True)
class ImportRequest:
    preset: str
    data: str  # a local .jsonl/.json/.parquet file or a dataset id
    name: str | None = None  # the source's name (partition); default from the data's name
    limit: int | None = None
    verify: str = "tests"
    columns: dict = field(default_factory=dict)  # role -> column renames
    license: str | None = None  # overrides the preset's


def source_entry(request: ImportRequest) -> tuple[str, dict]:
    """(name, sources.yaml entry) of the request; BadImport for what is wrong with it."""
    preset = require_preset(request.preset).with_columns(request.columns)
    if request.limit is not None and request.limit < 1:
        raise BadImport(f"--limit must be >= 1, got {request.limit}")
    data = str(Path(request.data).expanduser().resolve()) if is_local(request.data) else request.data
    name = request.name or source_name(Path(request.data.rstrip("/")))
    if ROUND_SEPARATOR in name or "|" in name or not name.strip():
        raise BadImport(f"--name {name!r}: a source name may not be empty or hold {ROUND_SEPARATOR!r} or '|'")
    entry = {"kind": "import", "preset": preset.name, "dataset": data, "verify": request.verify}
    entry.update({k: v for k, v in (("limit", request.limit), ("columns", request.columns or None),
                                    ("license", request.license or preset.license)) if v is not None})
    try:
        parse_spec(name, entry)
    except SourceError as exc:
        raise BadImport(str(exc)) from None
    first = next(read_rows(data, limit=1), None)
    if first is None:
        raise BadImport(f"--data {request.data}: no rows to import")
    check_columns(first[1], generic_shape(preset, first[1]), request.data)
    return name, entry


def _counts(asset: str, name: str, column: str, home: Home) -> dict:
    if name not in table_partitions(asset, home):
        return {}
    df = read_table(asset, [name], columns=[column], home=home)
    return dict(Counter(df[column].to_list()).most_common())


def _rows(asset: str, name: str, home: Home) -> int:
    return len(read_table(asset, [name], columns=["dialogue_id"], home=home)) \
        if name in table_partitions(asset, home) else 0


def import_summary(name: str, seconds: float, meta: dict, home: Home) -> dict:
    """Rows at each stage, contamination by benchmark task and by layer, and reject reasons (dedup's as
    duplicate:<layer>)."""
    stages = meta.get(IMPORTED_DIALOGUES, {})
    report = read_table(CONTAMINATION_REPORT_TABLE, [name], home=home) \
        if name in table_partitions(CONTAMINATION_REPORT_TABLE, home) else None
    rows_per_task = Counter()
    rows_per_layer = Counter()
    if report is not None and len(report):
        # a row counts once per task and once per layer, however many report lines name it
        rows_per_task.update(report.unique(["dialogue_id", "task_id"])["task_id"].to_list())
        rows_per_layer.update(report.unique(["dialogue_id", "layer"])["layer"].to_list())
    rejects = Counter(_counts(IMPORT_REJECTS_TABLE, name, "reason", home))
    rejects.update({f"duplicate:{k}": v for k, v in _counts(DEDUP_REJECTS_TABLE, name, "reason", home).items()})
    return {
        "source": name, "seconds": round(seconds, 1),
        "rows_in": stages.get("rows_in", 0), "extracted": stages.get("extracted", 0),
        "verified": stages.get("verified") if "verified" in stages else None,
        "imported": _rows(IMPORTED_DIALOGUES, name, home),
        "deduplicated": _rows(DEDUPLICATED_DIALOGUES, name, home),
        "decontaminated": _rows(DECONTAMINATED_DIALOGUES, name, home),
        "contaminated": dict(rows_per_task.most_common()),
        "contaminated_by_layer": dict(rows_per_layer.most_common()),
        "rejects": dict(rejects.most_common()),
        "languages": stages.get("languages", {}),
    }


def run_import(request: ImportRequest, teacher: TeacherLLM, sandbox: Sandbox, embedder: Embedder,
               home: Home) -> dict:
    """Register the import source and run `import_and_curate` on its partition; the JSON summary."""
    name, entry = source_entry(request)
    check_backend(sandbox.backend)
    register_source(entry, name, home=home)
    instance = persistent_instance(home)
    add_seed_source(instance, name)
    started = time.monotonic()
    result = run_job(import_job.name, home, {"teacher": teacher, "sandbox": sandbox, "embedder": embedder}, name,
                     instance=instance)
    return import_summary(name, time.monotonic() - started, run_metadata(result), home)
