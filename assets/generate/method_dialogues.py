"""method_dialogues: every generation method but the default one, one partition per (method, seed source).

A partition runs one method (assets/generate/methods) on what it starts from in that source: the source's seeds
(oss_instruct, library_instruct), its verified problems (evol_instruct, similar_problem, interaction_simulation) or
its verified dialogues (code_correction, follow_up, single_turn_packing; config.parent_methods names whose). Kept
rows are verified in the sandbox and labelled by difficulty; every drop is in method_rejects with its reason.
Curation reads every method's partitions of a source (deduplicated_dialogues).
"""

import time

import dagster as dg

from assets.checks import markdown_preview, not_empty_result, not_empty_spec, reason_metadata, stage_outs, table_output
from assets.generate.difficulty import label_difficulty
from assets.generate.method_run import MissingParents, method_inputs, run_method
from assets.generate.methods.base import MethodContext
from assets.generate.methods.config import MethodDialoguesConfig
from assets.keys import (
    GENERATE,
    METHOD_DIALOGUES,
    METHOD_REJECTS_TABLE,
    OSS_INSTRUCT_PROBLEMS,
    SEED_SNIPPETS,
    TEACHER_POOL,
    VERIFIED_DIALOGUES,
)
from assets.partitions import BY_SOURCE, METHOD, SEED_SOURCE, method_source_partitions
from assets.schemas import DIALOGUE_REJECTS, DIALOGUES, frame
from resources.embedder import Embedder
from resources.llm import TeacherLLM
from resources.sandbox import Sandbox
from resources.store import ParquetIOManager
from resources.teacher_state import with_round


@dg.multi_asset(
    outs=stage_outs(GENERATE, {
        METHOD_DIALOGUES: "Verified dialogues made by one generation method (Magicoder, Code-Feedback, AIEV-Instruct) "
                          "from one seed source, with method, parent and difficulty on every row.",
        METHOD_REJECTS_TABLE: "What each method dropped, with the reason.",
    }),
    deps=[dg.AssetDep(key, partition_mapping=BY_SOURCE)
          for key in (SEED_SNIPPETS, OSS_INSTRUCT_PROBLEMS, VERIFIED_DIALOGUES)],
    partitions_def=method_source_partitions,
    pool=TEACHER_POOL,
    check_specs=[
        not_empty_spec(METHOD_DIALOGUES, "At least one verified dialogue."),
    ],
)
def method_dialogues(context: dg.AssetExecutionContext, config: MethodDialoguesConfig, teacher: TeacherLLM,
                     sandbox: Sandbox, embedder: Embedder, io_manager: dg.ResourceParam[ParquetIOManager]):
    """One generation method's verified dialogues for one seed source."""
    started = time.monotonic()
    keys = context.partition_key.keys_by_dimension
    method, source = keys[METHOD], keys[SEED_SOURCE]
    home = io_manager.paths
    try:
        inputs = method_inputs(method, source, config, home)
    except MissingParents as err:
        raise dg.Failure(description=str(err)) from err
    runner = sandbox.runner()
    ctx = MethodContext(teacher.client(), teacher.client(), runner, home, source, context.log, embedder.encode)
    if config.dialogues.programmer_model:
        ctx.programmer.model = config.dialogues.programmer_model
    result = run_method(method, inputs, config, ctx)
    difficulty = label_difficulty(result.rows, ctx.programmer, runner, config.difficulty_samples,
                                  config.dialogues.seed, config.dialogues.max_tokens)
    rows = frame(with_round(result.rows, home), DIALOGUES)
    rejects = frame(with_round(result.rejects, home), DIALOGUE_REJECTS)
    started_from = len(inputs.seeds) + len(inputs.problems) + len(inputs.dialogues)
    turns = rows["turns"].to_list()
    yield table_output(rows, output_name=METHOD_DIALOGUES, metadata={
        "method": method, "source": source, "started_from": started_from, "rows": len(rows),
        "rejected": len(rejects),
        "pass_rate": round(len(rows) / (len(rows) + len(rejects)), 4) if len(rows) + len(rejects) else 0.0,
        "mean_turns": round(sum(turns) / len(turns), 3) if turns else 0.0,
        "difficulty": dg.MetadataValue.json(difficulty), "details": dg.MetadataValue.json(result.extra),
        "prompt_tokens": result.prompt_tokens, "completion_tokens": result.completion_tokens,
        "sandbox_runs": runner.executed, "sandbox_cached": runner.cached,
        "seconds": round(time.monotonic() - started, 1), **reason_metadata(result.counts),
        "preview": markdown_preview(rows, ["dialogue_id", "parent_id", "turns", "difficulty", "instruction"]),
    })
    yield table_output(rejects, output_name=METHOD_REJECTS_TABLE, metadata=reason_metadata(result.counts))
    yield not_empty_result(METHOD_DIALOGUES, rows, severity=dg.AssetCheckSeverity.WARN)

