"""What the Dagster UI shows about each asset beyond its data, declared in one place and applied when the
definitions are assembled (`with_attributes`):

- kinds: the technologies behind the asset (icons in the graph and catalog);
- a code version: a hash of what decides the asset's rows besides its inputs — the prompt templates it reads and
  the defaults and descriptions of its frozen config — so an edited prompt or a changed default marks the asset and
  everything downstream stale in the UI;
- the column schema of every stored table (`dagster/column_schema`, with each column's meaning and constraints:
  the Columns tab).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from assets import keys
from assets.curate.decontamination import DecontamConfig
from assets.curate.dedup import DedupConfig
from assets.generate.config import DialoguesConfig, ProblemsConfig
from assets.generate.methods.config import MethodDialoguesConfig
from assets.generate.seeds import SeedsConfig
from assets.imports.imported import ImportConfig
from assets.models.evaluation import EvalConfig
from assets.models.teacher import TeacherConfig
from assets.models.teacher_selection import SelectionConfig
from assets.models.training import TrainConfig
from assets.prompts import PROMPTS_DIR
from assets.release.sft_dataset import SftConfig
from assets.schemas import TABLES, table_schema
from eval.prompt_templates import PROMPTS_DIR as EVAL_PROMPTS_DIR


@dataclass(frozen=True)
class Attributes:
    kinds: frozenset[str]
    config: type | None = None  # the asset's dg.Config: its JSON schema (defaults, descriptions) is hashed
    prompts: tuple[Path, ...] = ()  # template files the asset reads


def _prompts(folder: Path, *names: str) -> tuple[Path, ...]:
    """Every version of the named templates in `folder` (all of them when no name is given)."""
    files = sorted(folder.glob("*.txt"))
    return tuple(f for f in files if not names or f.name.split(".")[0] in names)


_QUESTIONER = ("oss_instruct", "problem_repair", "format_repair")
_PROGRAMMER = ("programmer", "feedback_execution", "feedback_human_sim")
_TABLE = frozenset({"polars", "parquet"})

ATTRIBUTES: dict[str, Attributes] = {
    keys.SEED_SNIPPETS: Attributes(_TABLE | {"python"}, SeedsConfig),
    keys.OSS_INSTRUCT_PROBLEMS: Attributes(_TABLE | {"openai"}, ProblemsConfig,
                                           _prompts(PROMPTS_DIR, *_QUESTIONER)),
    keys.VERIFIED_DIALOGUES: Attributes(_TABLE | {"openai"}, DialoguesConfig, _prompts(PROMPTS_DIR, *_PROGRAMMER)),
    # Every method reads some template of the generate stage; the decontamination solver's and the import's are not
    # among them.
    keys.METHOD_DIALOGUES: Attributes(_TABLE | {"openai"}, MethodDialoguesConfig,
                                      tuple(p for p in _prompts(PROMPTS_DIR)
                                            if not p.name.startswith(("decontam", "import")))),
    keys.IMPORTED_DIALOGUES: Attributes(_TABLE | {"huggingface", "openai"}, ImportConfig,
                                        _prompts(PROMPTS_DIR, "oss_tests", "import_tests_repair", "format_repair")),
    keys.DEDUPLICATED_DIALOGUES: Attributes(_TABLE | {"sentence_transformers"}, DedupConfig),
    keys.DECONTAMINATED_DIALOGUES: Attributes(_TABLE | {"sentence_transformers"}, DecontamConfig,
                                              _prompts(PROMPTS_DIR, "decontam_solver", "decontam_solver_repair")),
    keys.SFT_DATASET: Attributes(_TABLE | {"huggingface"}, SftConfig),
    keys.HUB_DATASET: Attributes(frozenset({"huggingface"})),
    keys.FINETUNED_CHECKPOINT: Attributes(frozenset({"pytorch", "huggingface", "parquet"}), TrainConfig),
    keys.HUB_MODEL: Attributes(frozenset({"huggingface"})),
    keys.BENCHMARK_SCORES: Attributes(_TABLE | {"openai"}, EvalConfig, _prompts(EVAL_PROMPTS_DIR)),
    keys.TEACHER_SELECTION: Attributes(_TABLE | {"openai"}, SelectionConfig),
    keys.TEACHER: Attributes(_TABLE | {"openai"}, TeacherConfig),
}
# A stage's side tables share its attributes (one op writes both).
SIDE_TABLES = {
    keys.SEED_REJECTS_TABLE: keys.SEED_SNIPPETS,
    keys.PROBLEM_REJECTS_TABLE: keys.OSS_INSTRUCT_PROBLEMS,
    keys.DIALOGUE_REJECTS_TABLE: keys.VERIFIED_DIALOGUES,
    keys.METHOD_REJECTS_TABLE: keys.METHOD_DIALOGUES,
    keys.IMPORT_REJECTS_TABLE: keys.IMPORTED_DIALOGUES,
    keys.DEDUP_REJECTS_TABLE: keys.DEDUPLICATED_DIALOGUES,
    keys.CONTAMINATION_REPORT_TABLE: keys.DECONTAMINATED_DIALOGUES,
}


def code_version(attributes: Attributes) -> str | None:
    """12 hex of the sha256 over the config's JSON schema and the template files' bytes; None for an asset with
    neither (a publisher: what it does is decided by its inputs alone)."""
    if attributes.config is None and not attributes.prompts:
        return None
    digest = hashlib.sha256()
    if attributes.config is not None:
        digest.update(json.dumps(attributes.config.model_json_schema(), sort_keys=True, default=str).encode())
    for path in attributes.prompts:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def attributes_of(asset: str) -> Attributes:
    name = SIDE_TABLES.get(asset, asset)
    if name not in ATTRIBUTES:
        raise KeyError(f"asset {asset!r} has no entry in assets/attributes.py ATTRIBUTES; add its kinds there")
    return ATTRIBUTES[name]


def _apply(spec: dg.AssetSpec) -> dg.AssetSpec:
    name = spec.key.to_user_string()
    attributes = attributes_of(name)
    metadata = {"dagster/column_schema": table_schema(TABLES[name])} if name in TABLES else {}
    return spec.replace_attributes(kinds=set(attributes.kinds), code_version=code_version(attributes)) \
        .merge_attributes(metadata=metadata)


def with_attributes(assets: list[dg.AssetsDefinition]) -> list[dg.AssetsDefinition]:
    """`assets` with kinds, code versions and column schemas on every spec."""
    return [asset.map_asset_specs(_apply) for asset in assets]
