"""The generation phase with the real bundled teacher (Qwen2.5-Coder-1.5B on llama.cpp) on stdlib seeds: the embedded
defaults, as `crucible generate --seeds 6` runs them.

What a 1.5B model manages on six seeds varies from run to run (llama-server's batched replies are not bit-for-bit
repeatable): most runs verify one to three dialogues, but one CI run got four problems and no verified dialogue. So the
test asks for at least one verified dialogue from the first six seeds and, only when they give none, from the first
twelve. The second run reads the first six seeds' answers from the teacher's cache and pays only for the new six."""

from __future__ import annotations

import dagster as dg
import pytest

from assets.generate.dialogues import verified_dialogues
from assets.generate.problems import oss_instruct_problems
from assets.generate.seeds import seed_snippets
from assets.keys import OSS_INSTRUCT_PROBLEMS, VERIFIED_DIALOGUES
from resources.llm import TeacherLLM
from resources.llm_server import LocalTeacher
from resources.sandbox import Sandbox
from resources.store import ParquetIOManager, read_table


@pytest.mark.slow
@pytest.mark.timeout(3000)
def test_bundled_teacher_verifies_at_least_one_dialogue(bundled_teacher_home):
    model, _ = bundled_teacher_home
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("seed_source", ["stdlib"])
    summaries = []
    for max_seeds in (6, 12):
        result = dg.materialize(
            [seed_snippets, oss_instruct_problems, verified_dialogues], partition_key="stdlib", instance=instance,
            run_config={"ops": {"seed_snippets": {"config": {"max_seeds": max_seeds}}}},
            resources={"io_manager": ParquetIOManager(), "sandbox": Sandbox(workers=2),
                       "teacher": TeacherLLM(local=LocalTeacher(model=str(model.path)))},
        )
        assert result.success
        problems = read_table(OSS_INSTRUCT_PROBLEMS)
        dialogues = read_table(VERIFIED_DIALOGUES)
        summaries.append({e.asset_key.to_user_string(): {k: v.value for k, v in e.materialization.metadata.items()
                                                         if not k.startswith(("preview", "pass_rate_by"))}
                          for e in result.get_asset_materialization_events()})
        print(max_seeds, "seeds:", summaries[-1])  # shown with -s / on failure: what the teacher managed
        if len(dialogues):
            break
    assert len(dialogues) >= 1, summaries
    assert len(problems) >= len(dialogues)
    row = dialogues.row(0, named=True)
    assert row["messages"][0]["role"] == "user" and row["messages"][-1]["role"] == "assistant"
    assert row["verdicts"][-1]["status"] == "passed" and row["verdicts"][-1]["backend"] == "bwrap"
    assert row["teacher_model"] == model.name
