"""verified_dialogues: the AIEV-Instruct loop (assets/generate/dialogue_loop.py). The programmer answers, the sandbox
runs the answer with the tests, and on failure the execution output becomes a turn of its own, followed by the
questioner's feedback; the programmer revises, up to `max_turns`. Dialogues whose final code passes are verified;
the others are kept as rejects with the reason.
"""

import time

import dagster as dg

from assets.checks import markdown_preview, not_empty_result, not_empty_spec, reason_metadata, stage_outs, table_output
from assets.generate.config import DialoguesConfig
from assets.generate.dialogue_loop import run_dialogues
from assets.generate.difficulty import label_difficulty
from assets.generate.methods import DEFAULT_METHOD
from assets.keys import DIALOGUE_REJECTS_TABLE, GENERATE, OSS_INSTRUCT_PROBLEMS, TEACHER_POOL, VERIFIED_DIALOGUES
from assets.partitions import seed_source_partitions
from assets.plots import pass_rate_plot
from assets.schemas import DIALOGUE_REJECTS, DIALOGUES, frame
from resources.llm import TeacherLLM
from resources.sandbox import Sandbox
from resources.store import ParquetIOManager
from resources.teacher_state import with_round

INTERACTION_SIMULATION = "interaction_simulation"

@dg.multi_asset(
    outs=stage_outs(GENERATE, {
        VERIFIED_DIALOGUES: "Multi-turn dialogues whose final code passes the problem's tests in the sandbox, with "
                            "every turn's verdict.",
        DIALOGUE_REJECTS_TABLE: "Dialogues that never passed, with the reason.",
    }),
    ins={"problems": dg.AssetIn(OSS_INSTRUCT_PROBLEMS)},
    partitions_def=seed_source_partitions,
    pool=TEACHER_POOL,
    check_specs=[
        not_empty_spec(VERIFIED_DIALOGUES, "At least one verified dialogue."),
    ],
)
def verified_dialogues(context: dg.AssetExecutionContext, config: DialoguesConfig, problems, teacher: TeacherLLM,
                       sandbox: Sandbox, io_manager: dg.ResourceParam[ParquetIOManager]):
    """AIEV-Instruct multi-turn dialogues of one seed source, verified in the sandbox."""
    started = time.monotonic()
    questioner = teacher.client()
    programmer = teacher.client()
    if config.programmer_model:
        programmer.model = config.programmer_model
    runner = sandbox.runner()
    # Code-Feedback's interaction simulation is this loop with a simulated user's feedback.
    method = INTERACTION_SIMULATION if config.feedback_mode == "human_sim" else None
    result = run_dialogues(problems.to_dicts(), questioner, programmer, runner, config, context.log,
                           io_manager.paths, method)
    difficulty = label_difficulty(result.dialogues, programmer, runner, config.difficulty_samples, config.seed,
                                  config.max_tokens, config.programmer_prompt_version)
    dialogues = frame(with_round(result.dialogues, io_manager.paths), DIALOGUES)
    rejects = frame(with_round(result.rejects, io_manager.paths), DIALOGUE_REJECTS)
    turns = dialogues["turns"].to_list()
    plot = pass_rate_plot(result.pass_rate_by_turn, f"{context.partition_key}: pass rate by turn ({len(problems)} "
                                                    f"problems, feedback={config.feedback_mode})",
                          context.partition_key, io_manager.paths)
    yield table_output(dialogues, output_name=VERIFIED_DIALOGUES, metadata={
        "problems": len(problems), "verified": len(dialogues),
        **{f"pass_rate_turn_{k}": round(r, 4) for k, r in enumerate(result.pass_rate_by_turn, start=1)},
        "mean_turns": round(sum(turns) / len(turns), 3) if turns else 0.0,
        "method": method or DEFAULT_METHOD,
        "difficulty": dg.MetadataValue.json(difficulty),
        "prompt_tokens": result.prompt_tokens, "completion_tokens": result.completion_tokens,
        "new_tokens_this_run": questioner.totals.prompt_tokens + questioner.totals.completion_tokens
        + programmer.totals.prompt_tokens + programmer.totals.completion_tokens,
        "sandbox_runs": runner.executed, "sandbox_cached": runner.cached,
        "seconds": round(time.monotonic() - started, 1), **reason_metadata(result.counts),
        "pass_rate_by_turn": plot,
        "preview": markdown_preview(dialogues, ["dialogue_id", "turns", "passed_turn", "instruction"]),
    })
    yield table_output(rejects, output_name=DIALOGUE_REJECTS_TABLE, metadata=reason_metadata(result.counts))
    yield not_empty_result(VERIFIED_DIALOGUES, dialogues, severity=dg.AssetCheckSeverity.WARN)
