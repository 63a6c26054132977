"""benchmark_scores: what the newest checkpoint, its base model and the teacher score on HumanEval/MBPP.

benchmark_scores runs eval/ (HumanEval/MBPP, single-turn or with leak-free execution or simulated human feedback) for
each model and keeps one row per (model, benchmark, mode) with pass@1, its 95% bootstrap interval and the manifest.
A checkpoint whose folder, model files, evaluation config and teacher were scored before is not scored again: the
stored rows are reused (the materialization says so). Each manifest records what identified that evaluation.
Which of student and teacher generates the next round is teacher_selection's (assets/models/teacher_selection.py).
"""

import hashlib
import json
import time
from pathlib import Path

import dagster as dg
import polars as pl
from pydantic import Field

from assets.automation import AFTER_NEW_CHECKPOINT
from assets.keys import BENCHMARK_SCORES, EVALUATE, FINETUNED_CHECKPOINT, TEACHER_POOL
from assets.schemas import SCORES, frame
from resources.files import model_files_sha256
from resources.llm import TeacherLLM
from resources.sandbox import Sandbox
from resources.store import ParquetIOManager, read_table

BELOW_BASE_CHECK = "student_not_below_base"


class EvalConfig(dg.Config):
    benchmarks: list[str] = Field(default=["humaneval"], description="humaneval, mbpp (offline); humaneval_plus, "
                                                                     "mbpp_plus (need the Hub).")
    modes: list[str] = Field(default=["single"], description="single, exec_feedback, human_feedback.")
    limit: int | None = Field(default=None, description="First N problems of each benchmark; empty: all.")
    rounds: int = Field(default=2, description="Feedback rounds after the first answer (feedback modes).")
    max_tokens: int = Field(default=512, description="Answer length cap, tokens.")
    evaluate_base: bool = Field(default=True, description="Also score the checkpoint's base model (when it is a "
                                                          "local folder), for the below-base check.")
    evaluate_teacher: bool = Field(default=True, description="Also score the teacher.")
    seed: int = Field(default=0, description="Sampling and bootstrap seed.")


def models_to_score(checkpoint: dict, config: EvalConfig, teacher: TeacherLLM) -> list[tuple[str, str]]:
    """(role, model) for the checkpoint, its base (a local folder only) and the teacher (its endpoint's label)."""
    models = [("checkpoint", checkpoint["checkpoint"])]
    base = checkpoint.get("base_model")
    if config.evaluate_base and base and Path(base).is_dir():
        models.append(("base", base))
    if config.evaluate_teacher:
        models.append(("teacher", teacher.endpoint.label))
    return models


def open_backend(role: str, model: str, teacher: TeacherLLM, decoding):
    """The teacher answers through the TeacherLLM resource, on the server it already runs (never a second one); the
    checkpoint and its base are local folders."""
    from eval.backends import EndpointBackend, make_backend

    return EndpointBackend.of_teacher(teacher, decoding) if role == "teacher" else make_backend(model, decoding)


def evaluation_identity(checkpoint: dict, config: EvalConfig, teacher: TeacherLLM) -> dict:
    """What decides a round of benchmark_scores, with its `key`: the checkpoint (its folder, which the rows name, and
    its model files), the evaluation config, the base model's folder when it is scored, and the teacher when it is
    scored or plays the user."""
    folder = Path(checkpoint["checkpoint"])
    if not folder.is_dir():
        raise dg.Failure(f"the newest finetuned_checkpoint row names {folder}, which is not a folder; train again or "
                         "restore the checkpoint folder")
    uses_teacher = config.evaluate_teacher or "human_feedback" in config.modes
    identity = {"checkpoint": str(folder), "model_files_sha256": model_files_sha256(folder),
                "config": config.model_dump(),
                "base_model": checkpoint.get("base_model") if config.evaluate_base else None,
                "teacher": teacher.endpoint.label if uses_teacher else None}
    key = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return {"key": key, **identity}


def stored_scores(table: pl.DataFrame, key: str) -> list[dict]:
    """The rows of an earlier evaluation with this key (its rows are written together, at its end)."""
    if not len(table):
        return []
    candidates = table.filter(pl.col("manifest").str.contains(key, literal=True)).to_dicts()
    return [row for row in candidates if json.loads(row["manifest"]).get("evaluation", {}).get("key") == key]


def score_row(role: str, model: str, report: dict, checkpoint: dict, evaluation: dict) -> dict:
    manifest = {**report["manifest"], "evaluation": evaluation}
    ci = (report.get("ci95") or {}).get("pass@1") or [None, None]
    return {
        "model_role": role, "model": model, "model_sha256": manifest["generation"]["model"].get("model_sha256"),
        "backend": manifest["generation"]["model"]["backend"], "benchmark": report["benchmark"],
        "mode": report["mode"], "pass_at_1": report["pass@1"], "ci95_low": ci[0], "ci95_high": ci[1],
        "tasks": report["tasks_scored"], "samples": report["n_samples"],
        "pass_at_1_by_round": json.dumps(report.get("pass@1_by_round")),
        "fingerprint": manifest["generation"]["fingerprint"], "manifest": json.dumps(manifest, default=str),
        "checkpoint": checkpoint["checkpoint"], "dataset_version": checkpoint["dataset_version"],
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def below_base(rows: list[dict]) -> list[str]:
    """'benchmark/mode' where the checkpoint scored below its base model."""
    base = {(r["benchmark"], r["mode"]): r["pass_at_1"] for r in rows if r["model_role"] == "base"}
    return [f"{r['benchmark']}/{r['mode']}: {r['pass_at_1']:.3f} < {base[(r['benchmark'], r['mode'])]:.3f}"
            for r in rows if r["model_role"] == "checkpoint" and (r["benchmark"], r["mode"]) in base
            and r["pass_at_1"] < base[(r["benchmark"], r["mode"])]]


@dg.asset(ins={"checkpoints": dg.AssetIn(FINETUNED_CHECKPOINT)}, group_name=EVALUATE, pool=TEACHER_POOL,
          automation_condition=AFTER_NEW_CHECKPOINT,
          check_specs=[dg.AssetCheckSpec(BELOW_BASE_CHECK, asset=BENCHMARK_SCORES,
                                         description="The fine-tuned checkpoint scores at least its base model "
                                                     "(WARN: a regression to look at, not a broken asset).")])
def benchmark_scores(context: dg.AssetExecutionContext, config: EvalConfig, checkpoints: pl.DataFrame,
                     teacher: TeacherLLM, sandbox: Sandbox, io_manager: dg.ResourceParam[ParquetIOManager]):
    """pass@1 with 95% CIs and manifests for the newest checkpoint, its base and the teacher."""
    from eval.backends import Decoding, EndpointBackend
    from eval.evaluate import evaluate
    from eval.modes import ModeConfig
    from eval.scoring import SandboxRunner

    checkpoint = checkpoints.row(-1, named=True)
    evaluation = evaluation_identity(checkpoint, config, teacher)
    earlier = read_table(BENCHMARK_SCORES, home=io_manager.paths)
    reused = stored_scores(earlier, evaluation["key"])
    if reused:
        context.log.info(f"{checkpoint['checkpoint']} was scored with this config on {reused[0]['created_at']} "
                         f"(evaluation {evaluation['key']}): its {len(reused)} stored rows are reused, nothing runs")
        yield dg.Output(earlier, metadata={
            "reused": True, "evaluation": evaluation["key"], "scored_at": reused[0]["created_at"],
            "scores": dg.MetadataValue.md(scores_markdown(reused)), "rows_added": 0,
            **pass_at_1_metadata(reused)})
        yield below_base_result(reused)
        return
    rows = []
    # The simulated user of human_feedback is the teacher, for every model scored (as a strong model plays the user
    # in Code-Feedback's evaluation); started only when that mode is asked for.
    user = EndpointBackend.of_teacher(teacher, Decoding(max_tokens=300)) if "human_feedback" in config.modes else None
    try:
        runner = SandboxRunner(sandbox.pool(), sandbox.verdict_cache())  # the resource's pool and cache
        for role, model in models_to_score(checkpoint, config, teacher):
            backend = open_backend(role, model, teacher, Decoding(max_tokens=config.max_tokens))
            try:
                for benchmark in config.benchmarks:
                    for mode in config.modes:
                        report = evaluate(benchmark, backend, runner, ModeConfig(mode, config.rounds, 1,
                                                                                 config.seed),
                                          config.limit, teacher=user if mode == "human_feedback" else None)
                        rows.append(score_row(role, model, report, checkpoint, evaluation))
                        ci = (report.get("ci95") or {}).get("pass@1")
                        context.log.info(f"{role} {Path(model).name} {benchmark}/{mode}: "
                                         f"pass@1={report['pass@1']:.3f} ci95={ci}")
            finally:
                backend.close()
    finally:
        if user is not None:
            user.close()
    card_scores(checkpoint["checkpoint"], rows)
    table = pl.concat([frame(earlier.to_dicts(), SCORES) if len(earlier) else frame([], SCORES),
                       frame(rows, SCORES)])
    yield dg.Output(table, metadata={
        "reused": False, "evaluation": evaluation["key"], "scores": dg.MetadataValue.md(scores_markdown(rows)),
        "rows_added": len(rows), **pass_at_1_metadata(rows),
    })
    yield below_base_result(rows)


def pass_at_1_metadata(rows: list[dict]) -> dict:
    return {f"{r['model_role']}_{r['benchmark']}_{r['mode']}_pass_at_1": r["pass_at_1"] for r in rows}


def below_base_result(rows: list[dict]) -> dg.AssetCheckResult:
    regressions = below_base(rows)
    return dg.AssetCheckResult(check_name=BELOW_BASE_CHECK, passed=not regressions,
                               severity=dg.AssetCheckSeverity.WARN,
                               metadata={"below_base": dg.MetadataValue.json(regressions)})


def card_scores(checkpoint: str, rows: list[dict]) -> None:
    """The checkpoint's model card gets its scores: the model-index the Hub shows as evaluation results, and the
    evaluation section (which said "not yet evaluated")."""
    from finetune.model_card import set_eval_results

    card = Path(checkpoint) / "README.md"
    mine = [r for r in rows if r["model_role"] == "checkpoint"]
    if card.is_file() and mine:
        set_eval_results(card, mine)


def scores_markdown(rows: list[dict]) -> str:
    lines = ["| model | benchmark | mode | pass@1 | 95% CI | tasks |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['model_role']} `{Path(r['model']).name}` | {r['benchmark']} | {r['mode']} | "
              f"{r['pass_at_1']:.3f} | {r['ci95_low']:.3f}-{r['ci95_high']:.3f} | {r['tasks']} |" for r in rows]
    return "\n".join(lines)
