"""Evaluation modes, as in OpenCodeInterpreter's table, each reported on its own:

    single          one answer per sample
    exec_feedback   the answer is run against the VISIBLE tests only (eval.visible_tests); while they fail, the
                    execution result goes back to the model as "Execution result: ..." and it answers again,
                    up to `rounds` more times
    human_feedback  the same loop, but a teacher told to guide without writing code turns the visible-test result
                    into a user's words, and only those words reach the model

The hidden benchmark tests are never part of any message: they only score the final answer (and, for the report, the
answer each round would have left). Every conversation is kept, so the leak can be checked after the fact.

    conversations = run_mode(items, backend, runner, ModeConfig("exec_feedback", rounds=3), visible)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from eval.backends import GenRequest
from eval.benchmarks import BenchmarkItem
from eval.prompt_templates import Template, load_template
from eval.sanitize import Sanitized, python_blocks, sanitize
from eval.scoring import SandboxRunner
from eval.visible_tests import VisibleTests, is_mbpp, visible_prompt
from resources.sandbox import Verdict

MODES = ("single", "exec_feedback", "human_feedback")
OUTPUT_CHARS = 2000  # of stderr (and 500 of stdout) shown back to the model: enough for a traceback's end
NO_ADVICE = "It still does not work on my examples. Please look at the failing cases again."


@dataclass(frozen=True)
class ModeConfig:
    mode: str = "single"
    rounds: int = 3  # feedback rounds after the first answer (feedback modes only)
    n_samples: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}: choose one of {', '.join(MODES)}")
        if self.rounds < 0 or self.n_samples < 1:
            raise ValueError(f"rounds must be >= 0 and n_samples >= 1, got {self.rounds} and {self.n_samples}")

    @property
    def max_rounds(self) -> int:
        return 0 if self.mode == "single" else self.rounds


@dataclass(frozen=True)
class Prompts:
    instruct: Template = field(default_factory=lambda: load_template("instruct"))
    exec_feedback: Template = field(default_factory=lambda: load_template("exec_feedback"))
    human_feedback: Template = field(default_factory=lambda: load_template("human_feedback"))
    human_revision: Template = field(default_factory=lambda: load_template("human_revision"))

    def versions(self, mode: str) -> dict[str, str]:
        used = {"single": ("instruct",), "exec_feedback": ("instruct", "exec_feedback"),
                "human_feedback": ("instruct", "human_feedback", "human_revision")}[mode]
        return {name: getattr(self, name).version for name in used}


@dataclass
class Conversation:
    item: BenchmarkItem
    index: int  # sample number for this task
    messages: list[dict]  # everything the evaluated model was sent and answered
    answers: list[Sanitized] = field(default_factory=list)  # one per round
    visible: list[str] = field(default_factory=list)  # visible-test status after each answer that was checked
    teacher_messages: list[list[dict]] = field(default_factory=list)  # what the simulated human was sent

    @property
    def id(self) -> str:
        return f"{self.item.task_id}#{self.index}"

    def answer_at(self, round_: int) -> Sanitized:
        """The answer standing after `round_` feedback rounds (the last one if the loop stopped earlier)."""
        return self.answers[min(round_, len(self.answers) - 1)]


def task_text(item: BenchmarkItem) -> str:
    prompt = visible_prompt(item)
    return prompt if is_mbpp(item) else f"```python\n{prompt.rstrip()}\n```"


def first_messages(item: BenchmarkItem, prompts: Prompts) -> list[dict]:
    return prompts.instruct.render(task=task_text(item), entry_point=item.entry_point)


def execution_report(verdict: Verdict, tests: VisibleTests) -> str:
    """What running the answer on the visible tests showed, in words and the program's own output."""
    if verdict.status == "timeout":
        return (f"The code did not finish within {verdict.limits.get('timeout_s')} seconds on the example tests "
                "(an infinite loop, or far too slow).")
    if verdict.status == "memory":
        return "The code ran out of memory on the example tests."
    if verdict.status == "error":
        return "The code could not be run."
    parts = []
    stdout = verdict.stdout.strip()
    if stdout:
        parts.append("Output:\n" + stdout[-500:])
    stderr = verdict.stderr.strip()
    if stderr:
        parts.append(stderr[-OUTPUT_CHARS:])
    if verdict.status == "passed":
        parts.insert(0, f"All {len(tests.checks)} example tests passed." if tests.checks else "The code ran.")
    elif not tests.checks or "example tests failed" not in stderr:
        parts.insert(0, f"The code failed (exit status {verdict.exit_code}).")
    return "\n".join(p for p in parts if p).strip()


def _generate(backend, conversations: list[Conversation], round_: int, config: ModeConfig, version: str) -> None:
    requests = [GenRequest(f"{c.id}@{round_}", c.messages, seed=config.seed + c.index) for c in conversations]
    for conversation, text in zip(conversations, backend.generate(requests, prompt_version=version)):
        conversation.messages.append({"role": "assistant", "content": text})
        conversation.answers.append(sanitize(text, conversation.item))


def _run_visible(conversations: list[Conversation], visible: dict[str, VisibleTests],
                 runner: SandboxRunner) -> list[Verdict]:
    verdicts = runner.run_checked([(c.id, c.answers[-1].solution, visible[c.item.task_id].script())
                                   for c in conversations])
    for conversation, verdict in zip(conversations, verdicts):
        conversation.visible.append(verdict.status)
    return verdicts


def _shown_code(conversation: Conversation) -> str:
    """The answer's code as the simulated user sees it; for text that never parsed, what the model wrote."""
    answer = conversation.answers[-1]
    if answer.how != "unparsable":
        return answer.code.strip()
    raw = conversation.messages[-1]["content"]
    return ("\n\n".join(python_blocks(raw)) or raw).strip()


def _teacher_advice(teacher, failing: list[tuple[Conversation, str]], round_: int, prompts: Prompts,
                    version: str) -> list[str]:
    """The simulated user's words: its reply up to the first code fence (the role must not hand over code)."""
    requests = []
    for conversation, report in failing:
        messages = prompts.human_feedback.render(task=visible_prompt(conversation.item),
                                                 code=_shown_code(conversation), execution=report)
        conversation.teacher_messages.append(messages)
        requests.append(GenRequest(f"{conversation.id}@{round_}/teacher", messages, seed=0))
    replies = teacher.generate(requests, prompt_version=version)
    return [reply.split("```")[0].strip() or NO_ADVICE for reply in replies]


def _feedback(config: ModeConfig, failing: list[tuple[Conversation, str]], teacher, round_: int,
              prompts: Prompts, version: str) -> None:
    if config.mode == "exec_feedback":
        for conversation, report in failing:
            conversation.messages.extend(prompts.exec_feedback.render(execution=report))
        return
    advice = _teacher_advice(teacher, failing, round_, prompts, version)
    for (conversation, _), words in zip(failing, advice):
        conversation.messages.extend(prompts.human_revision.render(feedback=words))


def run_mode(items: list[BenchmarkItem], backend, runner: SandboxRunner, config: ModeConfig,
             visible: dict[str, VisibleTests] | None = None, teacher=None,
             prompts: Prompts | None = None) -> list[Conversation]:
    """Every conversation of the mode, answers sanitized. Rounds are batched across tasks: one generation batch and
    one sandbox batch per round, over the conversations still failing their visible tests."""
    prompts = prompts or Prompts()
    if config.mode != "single" and visible is None:
        raise ValueError(f"mode {config.mode} needs the visible tests of every item")
    if config.mode == "human_feedback" and teacher is None:
        raise ValueError("mode human_feedback needs a teacher backend")
    version = ",".join(prompts.versions(config.mode).values())
    conversations = [Conversation(item, i, first_messages(item, prompts)) for item in items
                     for i in range(config.n_samples)]
    active = conversations
    for round_ in range(config.max_rounds + 1):
        # The first answer's request is the single-turn one whatever the mode, so it carries only the instruct
        # template's version: the response cache then shares it between modes (exec_feedback reuses single's).
        _generate(backend, active, round_, config, prompts.instruct.version if round_ == 0 else version)
        if round_ == config.max_rounds:
            break
        verdicts = _run_visible(active, visible, runner)
        failing = [(c, execution_report(v, visible[c.item.task_id])) for c, v in zip(active, verdicts)
                   if not v.passed]
        if not failing:
            break
        _feedback(config, failing, teacher, round_, prompts, version)
        active = [c for c, _ in failing]
    return conversations
