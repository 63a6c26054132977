"""decontaminated_dialogues and contamination_report: deduplicated dialogues without benchmark problems.

Each row is scanned by three layers (assets/curate/decontam_layers.py): n-gram overlap with the benchmarks' prompts,
solutions and tests; embedding similarity to the benchmarks' descriptions and prompts; and execution of the row's
solution against the tests of the most similar benchmark items in the sandbox (a row without a runnable function gets
one from the teacher, started only if such a row exists). A row any layer flags is removed, and the report keeps one
line per (row, layer) with the benchmark, task id and score.
"""

import time
from collections import Counter

import dagster as dg
import polars as pl
from pydantic import Field

from assets.checks import markdown_preview, stage_outs, table_output
from assets.curate.decontam_layers import (
    EXECUTION,
    LAYERS,
    BenchmarkIndex,
    DecontamSettings,
    Match,
    scan,
)
from assets.curate.decontam_solver import LazySolver
from assets.generate.config import PYTHON
from assets.keys import (
    CONTAMINATION_REPORT_TABLE,
    CURATE,
    DECONTAMINATED_DIALOGUES,
    DEDUPLICATED_DIALOGUES,
    TEACHER_POOL,
)
from assets.partitions import seed_source_partitions
from assets.schemas import CONTAMINATION_REPORT, DIALOGUES, frame
from eval.benchmarks import DEFAULT_ONLINE, OFFLINE, load_benchmarks
from resources.embedder import Embedder
from resources.llm import TeacherLLM
from resources.sandbox import Sandbox

_DEFAULTS = DecontamSettings()


class DecontamConfig(dg.Config):
    ngram_threshold: float = Field(default=_DEFAULTS.ngram_threshold,
                                   description="Share of a benchmark item field's 10-grams found in the row.")
    embedding_threshold: float = Field(default=_DEFAULTS.embedding_threshold,
                                       description="Cosine similarity of the instruction to a benchmark description "
                                                   "(calibrated: benchmarks/calibrate_decontam.py).")
    prompt_threshold: float = Field(default=_DEFAULTS.prompt_threshold,
                                    description="Cosine similarity of the instruction to a benchmark prompt "
                                                "(signature, docstring and examples; MBPP: text and asserts), the "
                                                "embedding layer's second view (calibrated likewise).")
    top_k: int = Field(default=_DEFAULTS.top_k, description="Benchmark items whose tests run against each solution.")
    agreement: float = Field(default=_DEFAULTS.agreement,
                             description="Share of perturbed test inputs on which a function that passed a "
                                         "benchmark's tests must also match its canonical solution.")
    layers: list[str] = Field(default=list(LAYERS), description="Which of ngram, embedding, execution to apply.")
    synthesize_missing: bool = Field(default=True,
                                     description="Rows without a runnable function (no solution, or a stdin script) "
                                                 "get one written by the teacher for the execution layer.")
    benchmarks: list[str] = Field(default=list(OFFLINE), description="Offline benchmarks (always available).")
    online_benchmarks: list[str] = Field(default=list(DEFAULT_ONLINE),
                                         description="Benchmarks loaded through `datasets` when reachable; skipped "
                                                     "with a logged reason when not.")

    def settings(self) -> DecontamSettings:
        return DecontamSettings(ngram_threshold=self.ngram_threshold, embedding_threshold=self.embedding_threshold,
                                prompt_threshold=self.prompt_threshold, top_k=self.top_k, agreement=self.agreement,
                                layers=tuple(self.layers))


def report_rows(found: list[Match], ids: list[str], instructions: list[str], id_column: str = "dialogue_id"):
    return [{id_column: ids[m.row], "benchmark": m.benchmark, "task_id": m.task_id, "layer": m.layer,
             "score": m.score, "detail": m.detail, "instruction": instructions[m.row]} for m in found]


def decontaminate_table(df: pl.DataFrame, index: BenchmarkIndex, settings: DecontamSettings, embed, run_batch,
                        id_column: str = "dialogue_id", solve=None):
    """(clean rows, report rows, flagged ids) for any table with an id column, `instruction` and optional
    `solution`."""
    missing = [c for c in (id_column, "instruction") if c not in df.columns]
    if missing and len(df.columns):
        raise ValueError(f"the table has no {' or '.join(missing)} column; decontamination needs an id column "
                         f"({id_column}), `instruction` and optionally `solution`")
    # The execution layer runs Python: a solution in another language counts as none (the solver writes one from
    # the problem's text, which is the benchmark's prose whatever the language).
    rows = [{**row, "solution": None} if row.get("language") not in (None, PYTHON) else row for row in df.to_dicts()]
    found = scan(index, rows, settings, embed, run_batch, solve)
    ids = [str(r.get(id_column)) for r in rows]
    flagged = {ids[m.row] for m in found}
    clean = df.filter(~pl.col(id_column).cast(pl.Utf8).is_in(list(flagged))) if len(df) else df
    return clean, report_rows(found, ids, [r.get("instruction") for r in rows], id_column), flagged


@dg.multi_asset(
    outs=stage_outs(CURATE, {
        DECONTAMINATED_DIALOGUES: "Deduplicated dialogues with every row that matches a HumanEval or MBPP problem "
                                  "(n-gram, embedding or execution) removed.",
        CONTAMINATION_REPORT_TABLE: "Per removed row and layer: benchmark, task id, score.",
    }),
    ins={"dialogues": dg.AssetIn(DEDUPLICATED_DIALOGUES)},
    partitions_def=seed_source_partitions,
    pool=TEACHER_POOL,
)
def decontaminated_dialogues(context: dg.AssetExecutionContext, config: DecontamConfig, dialogues,
                             embedder: Embedder, sandbox: Sandbox, teacher: TeacherLLM):
    """Deduplicated dialogues of one seed source with benchmark problems removed."""
    started = time.monotonic()
    settings = config.settings()
    items = load_benchmarks(config.benchmarks, config.online_benchmarks)
    index = BenchmarkIndex.for_settings(items, embedder.encode, settings)
    runner = sandbox.runner() if EXECUTION in settings.layers else None  # verdicts cached like every sandbox run
    solve = LazySolver(teacher.client) if runner and config.synthesize_missing else None
    clean, report, flagged = decontaminate_table(dialogues, index, settings, embedder.encode,
                                                 runner.run if runner else None, solve=solve)
    clean = frame(clean.to_dicts(), DIALOGUES)
    report_df = frame(report, CONTAMINATION_REPORT)
    per_layer = Counter(f"{r['benchmark']}/{r['layer']}" for r in report)
    per_benchmark = Counter(b for b, _ in {(r["benchmark"], r["dialogue_id"]) for r in report})
    metadata = {
        "rows_in": len(dialogues), "rows_removed": len(flagged), "rows_out": len(clean),
        "benchmark_items": len(items), "benchmarks": dg.MetadataValue.json(sorted({i.benchmark for i in items})),
        "removed_by_benchmark_and_layer": dg.MetadataValue.json(dict(per_layer.most_common())),
        **{f"removed_{b}": n for b, n in per_benchmark.items()},
        "thresholds": dg.MetadataValue.json({"ngram": settings.ngram_threshold,
                                             "embedding": settings.embedding_threshold,
                                             "embedding_prompt": settings.prompt_threshold, "top_k": settings.top_k,
                                             "agreement": settings.agreement, "layers": list(settings.layers),
                                             "solver_top_k": settings.solver_top_k,
                                             "solver_min_similarity": settings.solver_min_similarity,
                                             "solver_attempts": settings.solver_attempts,
                                             "solver_confirmations": settings.solver_confirmations}),
        "rows_given_a_synthesized_solution": solve.asked if solve else 0,
        "synthesized_without_usable_code": solve.unanswered if solve else 0,
        "synthesized_repairs_asked_kept": dg.MetadataValue.json(list(solve.repairs) if solve else [0, 0]),
        "sandbox_runs": runner.executed if runner else 0, "sandbox_cached": runner.cached if runner else 0,
        "seconds": round(time.monotonic() - started, 1),
    }
    yield table_output(clean, output_name=DECONTAMINATED_DIALOGUES, metadata=metadata)
    yield table_output(report_df, output_name=CONTAMINATION_REPORT_TABLE, metadata={
        "rows": len(report_df),
        "preview": markdown_preview(report_df, ["dialogue_id", "benchmark", "task_id", "layer", "score"]),
    })

