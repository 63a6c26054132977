"""Every stored-table check, by asset: the one list both the Dagster asset checks (assets/checks/dagster_checks.py,
which also runs them for `crucible check`) are built from.

    evaluate(check, CheckInput(home, "stdlib", instance, pool))  # -> CheckLine

ERROR checks that guard a table others read are blocking in Dagster: a failing one stops the run before the next
stage reads the table. WARN checks (the pass-rate floor) only report.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import dagster as dg

from assets import keys
from assets.checks.consistency import no_duplicate_instructions, pass_rate_floor, splits_disjoint
from assets.checks.contamination import no_benchmark_text
from assets.checks.models import (
    checkpoint_complete,
    scores_present,
    selection_consistent,
    staged_folder_valid,
    teacher_lineage_consistent,
)
from assets.checks.reruns import reruns_pass
from assets.checks.stored import CheckInput, CheckSkipped, Outcome
from assets.checks.tables import stored_table_valid
from assets.schemas import TABLES
from resources.store import UNPARTITIONED

ERROR, WARN = dg.AssetCheckSeverity.ERROR, dg.AssetCheckSeverity.WARN

STORED_TABLE_CHECK = "stored_table_valid"
RERUN_CHECK = "sample_reruns_pass"
CONTAMINATION_CHECK = "no_benchmark_text"
PASS_RATE_CHECK = "pass_rate_floor"
DUPLICATES_CHECK = "no_duplicate_problems"
SPLITS_CHECK = "splits_disjoint"
CHECKPOINT_CHECK = "checkpoint_complete"
SCORES_CHECK = "scores_present"
SELECTION_CHECK = "selection_consistent"
LINEAGE_CHECK = "teacher_lineage_consistent"
STAGED_CHECK = "staged_folder_valid"


@dataclass(frozen=True)
class StoredCheck:
    name: str
    asset: str
    description: str
    run: Callable[[CheckInput], Outcome]
    severity: dg.AssetCheckSeverity = ERROR
    blocking: bool = False
    needs_sandbox: bool = False


# Tables another stage reads: a bad one must stop the run before it spreads.
_FEEDS_NEXT = {keys.SEED_SNIPPETS, keys.OSS_INSTRUCT_PROBLEMS, keys.VERIFIED_DIALOGUES, keys.METHOD_DIALOGUES,
               keys.DEDUPLICATED_DIALOGUES, keys.DECONTAMINATED_DIALOGUES, keys.SFT_DATASET,
               keys.FINETUNED_CHECKPOINT}


def _table_checks() -> list[StoredCheck]:
    return [StoredCheck(STORED_TABLE_CHECK, asset,
                        "The stored Parquet file, read back: the declared schema, the row count its materialization "
                        "recorded, unique ids, no nulls in required columns, well-formed messages.",
                        partial(stored_table_valid, asset), blocking=asset in _FEEDS_NEXT)
            for asset in TABLES]


def _rerun(asset: str, id_column: str, what: str) -> StoredCheck:
    return StoredCheck(RERUN_CHECK, asset,
                       f"A seeded random sample of the stored rows: {what} run again with the row's tests in the "
                       "sandbox, outside the verdict cache, pass.",
                       partial(reruns_pass, asset, id_column), blocking=True, needs_sandbox=True)


def _contamination(asset: str, id_column: str, with_report: bool) -> StoredCheck:
    return StoredCheck(CONTAMINATION_CHECK, asset,
                       "The stored rows hold no HumanEval/MBPP text (an exact layer and the n-gram layer, rerun on "
                       "the file)" + (" and none of the ids the contamination report removed." if with_report
                                      else "."),
                       partial(no_benchmark_text, asset, id_column, with_report=with_report), blocking=True)


def _floor(asset: str, rejects: str) -> StoredCheck:
    return StoredCheck(PASS_RATE_CHECK, asset,
                       "Kept rows against the same step's rejects: at least the pass-rate floor.",
                       partial(pass_rate_floor, asset, rejects), severity=WARN)


CHECKS: list[StoredCheck] = [
    *_table_checks(),
    _rerun(keys.OSS_INSTRUCT_PROBLEMS, "problem_id", "the reference solutions"),
    _rerun(keys.VERIFIED_DIALOGUES, "dialogue_id", "the final code"),
    _rerun(keys.METHOD_DIALOGUES, "dialogue_id", "the final code"),
    _rerun(keys.SFT_DATASET, "id", "the final code"),
    _floor(keys.OSS_INSTRUCT_PROBLEMS, keys.PROBLEM_REJECTS_TABLE),
    _floor(keys.VERIFIED_DIALOGUES, keys.DIALOGUE_REJECTS_TABLE),
    _floor(keys.METHOD_DIALOGUES, keys.METHOD_REJECTS_TABLE),
    StoredCheck(DUPLICATES_CHECK, keys.DEDUPLICATED_DIALOGUES,
                "No two stored rows of one method, in this partition or any other, state the same problem.",
                partial(no_duplicate_instructions, keys.DEDUPLICATED_DIALOGUES, "dialogue_id"), blocking=True),
    _contamination(keys.DECONTAMINATED_DIALOGUES, "dialogue_id", with_report=True),
    _contamination(keys.SFT_DATASET, "id", with_report=False),
    StoredCheck(SPLITS_CHECK, keys.SFT_DATASET,
                "No problem and no root problem of the stored dataset has rows in both splits.",
                partial(splits_disjoint, keys.SFT_DATASET), blocking=True),
    StoredCheck(CHECKPOINT_CHECK, keys.FINETUNED_CHECKPOINT,
                "The newest checkpoint's folder holds a config, weights and a tokenizer; its loss is finite.",
                partial(checkpoint_complete, keys.FINETUNED_CHECKPOINT), blocking=True),
    StoredCheck(SCORES_CHECK, keys.BENCHMARK_SCORES,
                "The newest checkpoint has scores; every score has a manifest, tasks and a sane 95% interval.",
                partial(scores_present, keys.BENCHMARK_SCORES)),
    StoredCheck(SELECTION_CHECK, keys.TEACHER_SELECTION,
                "The newest decision, recomputed from its stored per-problem outcomes, has the stored counts, "
                "p-value and decision; it names the chosen model as next teacher and the newest checkpoint, and "
                "agrees with the decision file.",
                partial(selection_consistent, keys.TEACHER_SELECTION), blocking=True),
    StoredCheck(LINEAGE_CHECK, keys.TEACHER,
                "One teacher per round without gaps; every change rests on a student decision; the serving files "
                "exist and the promoted checkpoint is unchanged; teacher.json is the newest row.",
                partial(teacher_lineage_consistent, keys.TEACHER), blocking=True),
    StoredCheck(STAGED_CHECK, keys.HUB_DATASET, "The staged (or uploaded) dataset folder validates as a Hub dataset.",
                partial(staged_folder_valid, keys.HUB_DATASET)),
    StoredCheck(STAGED_CHECK, keys.HUB_MODEL, "The staged (or uploaded) model folder validates as a Hub model.",
                partial(staged_folder_valid, keys.HUB_MODEL)),
]


@dataclass
class CheckLine:
    """One check on one partition, as `crucible check` prints it."""

    status: str  # PASS | FAIL | WARN | SKIP
    check: str
    asset: str
    partition: str | None
    problem: str
    severity: dg.AssetCheckSeverity
    metadata: dict

    def text(self) -> str:
        return "  ".join([f"{self.status:4}", self.check, self.asset, self.partition or UNPARTITIONED,
                          self.problem]).rstrip()


def checks_for(asset: str | None) -> list[StoredCheck]:
    """The checks of `asset` (every asset's when None); ValueError naming the known assets for an unknown one."""
    known = sorted({c.asset for c in CHECKS})
    if asset is not None and asset not in known:
        raise ValueError(f"--asset {asset!r} has no checks; choose one of: {', '.join(known)}")
    return [c for c in CHECKS if asset is None or c.asset == asset]


def evaluate(check: StoredCheck, given: CheckInput) -> CheckLine:
    """Run one check; a skip (nothing stored) and a crash (a file that no longer parses) become lines too."""
    try:
        outcome = check.run(given)
        status = "PASS" if outcome.passed else ("WARN" if check.severity == WARN else "FAIL")
        problem, metadata = outcome.problem, outcome.metadata
    except CheckSkipped as skipped:
        status, problem, metadata = "SKIP", str(skipped), {}
    except Exception as exc:  # an unreadable file is a failed check, not a crashed command
        status = "WARN" if check.severity == WARN else "FAIL"
        problem, metadata = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}", {}
    return CheckLine(status, check.name, check.asset, given.partition, problem, check.severity, metadata)

