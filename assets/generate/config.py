"""The frozen configs of the generation stages (the questioner's problems, the programmer's dialogues) and the
choices they allow."""

from __future__ import annotations

import dagster as dg
from pydantic import Field


class ProblemsConfig(dg.Config):
    """OSS-Instruct problem generation (the questioner role)."""

    max_turns: int = Field(default=3, description="Questioner replies per seed: the first plus repairs after the "
                                                  "reference failed its own tests.")
    temperature: float = Field(default=0.2, description="Questioner sampling temperature.")
    max_tokens: int = Field(default=1024, description="Reply length cap, tokens.")
    min_asserts: int = Field(default=3, description="Tests need at least this many assert statements.")
    prompt_version: int = Field(default=1, description="assets/prompts/oss_instruct.v<N>.txt")
    repair_prompt_version: int = Field(default=1, description="assets/prompts/problem_repair.v<N>.txt")
    reference_outputs: bool = Field(default=True, description="When the repairs run out and only expected values "
                                                              "disagree, take them from the reference's outputs "
                                                              "(tests_source=reference_outputs); such a problem "
                                                              "is kept only if the programmer's first answer "
                                                              "agrees, an independent check (CodeT-style).")
    seed: int | None = Field(default=0, description="Sampling seed sent with every request (OpenAI, vLLM and "
                                                    "llama.cpp honour it), so a run can be repeated.")
    max_problems: int | None = Field(default=None, description="Use at most this many seeds of the partition "
                                                               "(in seed order); empty: all.")
    fresh_attempts: int = Field(default=1, ge=0, description="A seed whose problem was rejected starts again from "
                                                             "nothing (a new conversation, sampled) up to this many "
                                                             "times, so hard problems survive as well as easy ones "
                                                             "(KodCode).")


class DialoguesConfig(dg.Config):
    """AIEV-Instruct dialogues: the programmer answers, the sandbox judges, the questioner gives feedback."""

    max_turns: int = Field(default=4, description="Programmer answers per problem, the first one included.")
    feedback_mode: str = Field(default="execution", description="execution: the questioner turns the error into a "
                                                                "hint; human_sim: a simulated user guides without "
                                                                "code (Code-Feedback).")
    execution_role: str = Field(default="user", description="user: the execution result and the feedback form one "
                                                            "user turn with an 'Execution result:' prefix; tool: the "
                                                            "result is a tool turn, the feedback a user turn.")
    programmer_model: str | None = Field(default=None, description="Model name for the programmer role on the "
                                                                   "teacher's server; empty: the teacher's model.")
    programmer_temperature: float = Field(default=0.0, description="Programmer sampling temperature, first answer.")
    revision_temperature: float = Field(default=0.4, description="Programmer sampling temperature for revisions: "
                                                                 "greedy decoding tends to repeat a failed answer.")
    questioner_temperature: float = Field(default=0.2, description="Feedback sampling temperature.")
    max_tokens: int = Field(default=1024, description="Reply length cap, tokens.")
    seed: int | None = Field(default=0, description="Sampling seed sent with every request.")
    programmer_prompt_version: int = Field(default=1, description="assets/prompts/programmer.v<N>.txt")
    feedback_prompt_version: int = Field(default=1, description="assets/prompts/feedback_<mode>.v<N>.txt")
    difficulty_samples: int = Field(default=3, ge=0, description="Sampled programmer answers per verified problem "
                                                                 "whose pass share labels it easy / medium / hard; "
                                                                 "0: no label.")
    aiev_complete: bool = Field(default=False, description="AutoCoder's dialogue shape: a verified dialogue also "
                                                           "holds the unit tests and the passing run's output as "
                                                           "its last turn.")


# Where a problem's tests came from: the questioner wrote them, or their expected values are the reference's outputs.
QUESTIONER_TESTS, REFERENCE_OUTPUTS = "questioner", "reference_outputs"
# The language every generation method writes today: its prompts ask for Python and its tests are Python asserts.
PYTHON = "python"
LANGUAGE = PYTHON
FEEDBACK_MODES = ("execution", "human_sim")
EXECUTION_ROLES = ("user", "tool")
EXECUTION_PREFIX = "Execution result:"
UNIT_TESTS_TURN = "Unit tests:"  # how the AIEV-complete closing turn starts (assets/generate/dialogue_loop.py)
