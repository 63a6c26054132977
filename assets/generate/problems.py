"""oss_instruct_problems: the teacher, as questioner, turns each seed into a problem, a reference solution and tests
(the phases are in assets/generate/questioner.py), kept only when verified in the sandbox.
"""

import time

import dagster as dg

from assets.checks import markdown_preview, not_empty_result, not_empty_spec, reason_metadata, stage_outs, table_output
from assets.generate.config import ProblemsConfig
from assets.generate.questioner import generate_problems
from assets.keys import GENERATE, OSS_INSTRUCT_PROBLEMS, PROBLEM_REJECTS_TABLE, SEED_SNIPPETS, TEACHER_POOL
from assets.partitions import seed_source_partitions
from assets.schemas import PROBLEM_REJECTS, PROBLEMS, frame
from resources.llm import TeacherLLM
from resources.sandbox import Sandbox
from resources.store import ParquetIOManager
from resources.teacher_state import with_round


@dg.multi_asset(
    outs=stage_outs(GENERATE, {
        OSS_INSTRUCT_PROBLEMS: "Self-contained problems with a reference solution and assert-based tests that pass the "
                               "sandbox quality gates.",
        PROBLEM_REJECTS_TABLE: "Seeds whose problem was rejected, with the reason and the teacher's last reply.",
    }),
    ins={"seeds": dg.AssetIn(SEED_SNIPPETS)},
    partitions_def=seed_source_partitions,
    pool=TEACHER_POOL,
    check_specs=[
        not_empty_spec(OSS_INSTRUCT_PROBLEMS, "At least one problem was kept."),
    ],
)
def oss_instruct_problems(context: dg.AssetExecutionContext, config: ProblemsConfig, seeds, teacher: TeacherLLM,
                          sandbox: Sandbox, io_manager: dg.ResourceParam[ParquetIOManager]):
    """OSS-Instruct problems of one seed source, verified in the sandbox (repairs kept as AIEV-Instruct data)."""
    started = time.monotonic()
    rows = seeds.to_dicts()
    if config.max_problems is not None:
        rows = rows[: config.max_problems]
    runner = sandbox.runner()
    result = generate_problems(rows, teacher.client(), runner, config, context.log, io_manager.paths)
    problems = frame(with_round(result.problems, io_manager.paths), PROBLEMS)
    rejects = frame(with_round(result.rejects, io_manager.paths), PROBLEM_REJECTS)
    yield table_output(problems, output_name=OSS_INSTRUCT_PROBLEMS, metadata={
        "seeds_used": len(rows), "problems": len(problems),
        "kept_fraction": round(len(problems) / len(rows), 3) if rows else 0.0,
        "repair_turns": dg.MetadataValue.json({str(k): v for k, v in sorted(result.repairs_used.items())}),
        "fresh_attempts": dg.MetadataValue.json({"started_again": sum(result.retried.values()),
                                                 "kept_after_a_fresh_start": sum(
                                                     1 for p in result.problems if p["attempts"] > 1),
                                                 "reasons": dict(result.retried)}),
        "prompt_tokens": result.prompt_tokens, "completion_tokens": result.completion_tokens,
        "sandbox_runs": result.sandbox_runs, "sandbox_cached": runner.cached,
        "seconds": round(time.monotonic() - started, 1), **reason_metadata(result.counts),
        "preview": markdown_preview(problems, ["problem_id", "entry_point", "instruction"]),
    })
    yield table_output(rejects, output_name=PROBLEM_REJECTS_TABLE, metadata=reason_metadata(result.counts))
    yield not_empty_result(OSS_INSTRUCT_PROBLEMS, problems, severity=dg.AssetCheckSeverity.WARN)
