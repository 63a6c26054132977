"""imported_dialogues and import_rejects: an external instruction dataset (Magicoder-OSS-Instruct, evol-codealpaca,
Code-Feedback, or any instruction/response or chat data) as dialogues of its own partition, which dedup,
decontamination and the SFT dataset take like generated ones (assets/imports/rows.py does the work).

The partition is an `import` source of the registry ($CRUCIBLE_HOME/sources.yaml), which `crucible import` writes:
its preset, the data (a local file or a dataset id), how many rows to read, and whether to verify them.
"""

import dataclasses
import time

import dagster as dg
from pydantic import Field

from assets.checks import markdown_preview, reason_metadata, stage_outs, table_output
from assets.fingerprints import record_config
from assets.generate.seed_sources import SourceError, require_source
from assets.imports.rows import import_fingerprint, import_rows
from assets.imports.verify import ImportVerifier
from assets.keys import IMPORT, IMPORT_REJECTS_TABLE, IMPORTED_DIALOGUES, TEACHER_POOL
from assets.partitions import seed_source_partitions
from assets.schemas import DIALOGUE_REJECTS, DIALOGUES, frame
from resources.llm import TeacherLLM
from resources.sandbox import Sandbox
from resources.store import ParquetIOManager


class ImportConfig(dg.Config):
    """How imported rows are verified (sources with `verify: tests`): the teacher's tests and their repairs."""

    temperature: float = Field(default=0.2, description="Teacher sampling temperature for the tests.")
    max_tokens: int = Field(default=768, description="Reply length cap of a tests reply, tokens.")
    repair_turns: int = Field(default=1, ge=0, description="Corrections of the tests after a failing run, each shown "
                                                          "the execution output, before the row is rejected.")
    min_asserts: int = Field(default=3, description="The tests need at least this many assert statements.")
    prompt_version: int = Field(default=1, description="assets/prompts/oss_tests.v<N>.txt")
    repair_prompt_version: int = Field(default=1, description="assets/prompts/import_tests_repair.v<N>.txt and "
                                                              "format_repair.v<N>.txt")
    format_repair: bool = Field(default=True, description="Tests that break a rule the gates need get one more turn "
                                                         "told what is wrong.")
    seed: int | None = Field(default=0, description="Sampling seed.")


@dg.multi_asset(
    outs=stage_outs(IMPORT, {
        IMPORTED_DIALOGUES: "The rows of an imported instruction dataset as dialogues (method import:<preset>): the "
                            "published conversation, the extracted solution and its language, verified against "
                            "teacher-written tests in the sandbox when the source asks for it.",
        IMPORT_REJECTS_TABLE: "Imported rows that were not kept, with the reason (missing column values, no code, "
                              "a language the sandbox does not run, tests the solution fails, ...).",
    }),
    partitions_def=seed_source_partitions,
    pool=TEACHER_POOL,
)
def imported_dialogues(context: dg.AssetExecutionContext, config: ImportConfig, teacher: TeacherLLM,
                       sandbox: Sandbox, io_manager: dg.ResourceParam[ParquetIOManager]):
    """The rows of one import source as dialogues, verified when the source asks for it."""
    started = time.monotonic()
    home = io_manager.paths
    spec = require_source(context.partition_key, home=home)
    if spec.kind != "import":
        raise SourceError(f"source {spec.name!r} is a {spec.kind} source of seed code, not an imported dataset: "
                          f"materialize seed_snippets and the generate group for it instead")
    teacher_label = teacher.endpoint.label if spec.verify == "tests" else None
    config_fp = record_config(import_fingerprint(spec, config, teacher_label), home, stage=IMPORTED_DIALOGUES,
                              source=dataclasses.asdict(spec), verify=config if spec.verify == "tests" else None,
                              tests_writer=teacher_label)
    result = import_rows(spec, config, lambda: ImportVerifier(config, teacher.client(), sandbox.runner()), config_fp,
                         context.log.info)
    rows, rejects = frame(result.rows, DIALOGUES), frame(result.rejects, DIALOGUE_REJECTS)
    yield table_output(rows, output_name=IMPORTED_DIALOGUES, metadata={
        **result.stages, "preset": spec.preset, "data": spec.dataset, "verify": spec.verify,
        "languages": dg.MetadataValue.json(dict(result.languages.most_common())),
        "tests_writer": teacher_label or "", "prompt_tokens": result.prompt_tokens,
        "completion_tokens": result.completion_tokens, "seconds": round(time.monotonic() - started, 1),
        **reason_metadata(result.counts),
        "preview": markdown_preview(rows, ["dialogue_id", "language", "turns", "instruction"]),
    })
    yield table_output(rejects, output_name=IMPORT_REJECTS_TABLE, metadata=reason_metadata(result.counts))
