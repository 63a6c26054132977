"""The AIEV-Instruct loop of verified_dialogues, in named phases over all problems at once, turn by turn:

1. `_answer`: the programmer answers every open dialogue (the first answer greedy, revisions sampled);
2. `_judge`: the sandbox runs each answer's code with the problem's tests; a pass closes the dialogue;
3. `_feedback`: every failing run becomes an execution turn followed by the questioner's feedback (a hint from the
   error, or a Code-Feedback-style simulated user), asked as one round;
4. `rows`: verified dialogues and rejects (with the reason), and the pass rate by turn.

A problem row may carry `context` (earlier turns the dialogue continues: a follow-up's parent dialogue), a `method`
and a `parent_id`; with `aiev_complete` a verified dialogue also holds its unit tests and the passing run's output as
its last turn, the shape of AutoCoder's AIEV-Instruct data.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field

from assets.fingerprints import fingerprint, record_config
from assets.generate.config import (
    EXECUTION_PREFIX,
    EXECUTION_ROLES,
    FEEDBACK_MODES,
    LANGUAGE,
    REFERENCE_OUTPUTS,
    UNIT_TESTS_TURN,
    DialoguesConfig,
)
from assets.generate.methods import DEFAULT_METHOD
from assets.generate.programs import execution_feedback, program_with_tests, verdict_row
from assets.generate.replies import count_asserts, extract_code
from assets.generate.teacher_rounds import ask_round, sampling, tokens
from assets.keys import VERIFIED_DIALOGUES
from assets.prompts import load_prompt
from resources.home import Home
from resources.llm import ChatRequest, TeacherClient, TeacherError
from resources.progress import activity
from resources.verdict_cache import CachedRunner

# The feedback role never writes code: generation stops at the first code fence.
FEEDBACK_STOP = ["```"]
# Used when the feedback reply was empty (cut at a code fence before any prose).
EMPTY_FEEDBACK = "The code does not pass the tests yet; please find the mistake and give the corrected code."
NO_CODE_FEEDBACK = "Your answer has no Python code block. Give the complete solution in one ```python block."


@dataclass
class _Dialogue:
    problem: dict
    messages: list[dict] = field(default_factory=list)  # what is stored: user/assistant(/tool) turns
    verdicts: list[dict] = field(default_factory=list)
    code: str | None = None
    turns: int = 0
    passed_turn: int | None = None
    reason: str | None = None  # set when the dialogue ended early (teacher_error)
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def add_usage(self, completion) -> None:
        p, c = tokens(completion)
        self.prompt_tokens += p
        self.completion_tokens += c


@dataclass
class DialoguesResult:
    dialogues: list[dict]
    rejects: list[dict]
    counts: Counter
    pass_rate_by_turn: list[float]
    prompt_tokens: int
    completion_tokens: int


def execution_turns(execution: str, feedback: str, role: str) -> list[dict]:
    """The turns a failing run adds to the dialogue, exactly as the programmer sees them next."""
    result = f"{EXECUTION_PREFIX}\n```\n{execution}\n```"
    feedback = feedback.strip() or EMPTY_FEEDBACK
    if role == "tool":
        return [{"role": "tool", "content": result}, {"role": "user", "content": feedback}]
    return [{"role": "user", "content": f"{result}\n\n{feedback}"}]


def passing_run_turn(tests: str, verdict: dict, role: str) -> dict:
    """The last turn of an AIEV-complete dialogue: the unit tests and the passing run's output."""
    output = (verdict.get("stdout") or "").strip()
    result = f"All {count_asserts(tests)} assertions passed (exit status {verdict.get('exit_code')})."
    return {"role": role, "content": f"{UNIT_TESTS_TURN}\n```python\n{tests.strip()}\n```\n\n{EXECUTION_PREFIX}\n```\n"
                                     f"{result}{chr(10) + output if output else ''}\n```"}


def ends_verified(messages: list[dict], verdicts: list[dict]) -> bool:
    """The dialogue's last verdict passed and its last assistant turn is the last turn, or is followed only by the
    passing run's turn of an AIEV-complete dialogue."""
    if not messages or not verdicts or verdicts[-1]["status"] != "passed":
        return False
    last_answer = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=-1)
    after = messages[last_answer + 1:]
    return last_answer >= 0 and (not after or (len(after) == 1 and after[0]["content"].startswith(UNIT_TESTS_TURN)))


def task_messages(problem: dict) -> list[dict]:
    """The conversation the programmer is asked to continue: the problem's context, then its statement."""
    return list(problem.get("context") or []) + [{"role": "user", "content": problem["instruction"]}]


def check_config(config: DialoguesConfig) -> None:
    if config.feedback_mode not in FEEDBACK_MODES:
        raise ValueError(f"verified_dialogues config feedback_mode={config.feedback_mode!r}: use one of "
                         f"{', '.join(FEEDBACK_MODES)}")
    if config.execution_role not in EXECUTION_ROLES:
        raise ValueError(f"verified_dialogues config execution_role={config.execution_role!r}: use one of "
                         f"{', '.join(EXECUTION_ROLES)}")


class DialogueLoop:
    """The dialogues of one run: prompts, every dialogue by problem id, the open ones, and the drop counts."""

    def __init__(self, problems: list[dict], questioner: TeacherClient, programmer: TeacherClient,
                 runner: CachedRunner, config: DialoguesConfig, log=None, home: Home | None = None,
                 method: str | None = None) -> None:
        check_config(config)
        self.home, self.method = home, method
        self.questioner, self.programmer, self.runner, self.config, self.log = (questioner, programmer, runner,
                                                                                 config, log)
        system = load_prompt("programmer", config.programmer_prompt_version)
        self.feedback = load_prompt(f"feedback_{config.feedback_mode}", config.feedback_prompt_version)
        self.versions = f"{system.version}+{self.feedback.version}"
        self.system_turns = system.render()
        self.counts: Counter = Counter()
        self.work = {p["problem_id"]: _Dialogue(p, task_messages(p)) for p in problems}
        self.active = dict(self.work)

    def _end_early(self, dialogue: _Dialogue, reason: str) -> None:
        self.counts[reason] += 1
        dialogue.reason = reason
        del self.active[dialogue.problem["problem_id"]]

    def run(self) -> None:
        for turn in range(1, self.config.max_turns + 1):
            if not self.active:
                break
            answered = len(self.active)
            with activity(f"programmer turn {turn}"):
                runnable, no_code = self._answer(turn)
            failing = self._judge(runnable, no_code, turn)
            if turn == self.config.max_turns:
                break
            with activity(f"feedback turn {turn}"):
                self._feedback(failing)
            if self.log:
                done = sum(d.passed_turn is not None for d in self.work.values())
                self.log.info(f"programmer turn {turn}: {answered} answered, {done}/{len(self.work)} verified so "
                              f"far, {len(self.active)} continue")

    def _answer(self, turn: int) -> tuple[list[_Dialogue], list[_Dialogue]]:
        """The programmer's answers: (dialogues whose answer holds code, dialogues whose answer holds none)."""
        config = self.config
        answers = ask_round(self.programmer, [
            ChatRequest(pid, self.system_turns + d.messages,
                        config.programmer_temperature if turn == 1 else config.revision_temperature,
                        config.max_tokens, self.versions, sampling(config.seed)) for pid, d in self.active.items()])
        runnable: list[_Dialogue] = []
        no_code: list[_Dialogue] = []
        for pid, dialogue in list(self.active.items()):
            answer = answers[pid]
            if isinstance(answer, TeacherError):
                self._end_early(dialogue, "teacher_error")
                continue
            dialogue.add_usage(answer)
            dialogue.turns = turn
            dialogue.messages.append({"role": "assistant", "content": answer.content})
            dialogue.code = extract_code(answer.content, dialogue.problem.get("entry_point"))
            (runnable if dialogue.code else no_code).append(dialogue)
        return runnable, no_code

    def _judge(self, runnable: list[_Dialogue], no_code: list[_Dialogue], turn: int) -> list[tuple[_Dialogue, str]]:
        """Run the answers with the tests; the failing dialogues that go on, each with its execution output."""
        verdicts = self.runner.run([{"id": d.problem["problem_id"],
                                     "code": program_with_tests(d.code, d.problem["tests"])} for d in runnable])
        failing: list[tuple[_Dialogue, str]] = [(d, "") for d in no_code]
        for dialogue, verdict in zip(runnable, verdicts):
            dialogue.verdicts.append(verdict_row(verdict, turn))
            if verdict.passed:
                dialogue.passed_turn = turn
                del self.active[dialogue.problem["problem_id"]]
            else:
                failing.append((dialogue, execution_feedback(verdict)))
        # Tests whose expected values came from the reference count only if an independent first answer agrees;
        # after feedback that shows those values, agreement would prove nothing.
        for dialogue, _ in failing:
            if dialogue.problem.get("tests_source") == REFERENCE_OUTPUTS:
                self._end_early(dialogue, "reference_outputs_unconfirmed")
        return [(d, e) for d, e in failing if d.reason is None]

    def _feedback(self, failing: list[tuple[_Dialogue, str]]) -> None:
        """The questioner's feedback on every failing answer, asked as one round, appended as the next turns."""
        config = self.config
        hints = ask_round(self.questioner, [
            ChatRequest(d.problem["problem_id"], self.feedback.render(problem=d.problem["instruction"], code=d.code,
                                                                       execution=execution),
                        config.questioner_temperature, config.max_tokens, self.versions,
                        sampling(config.seed, stop=FEEDBACK_STOP))
            for d, execution in failing if d.code])
        for dialogue, execution in failing:
            if not dialogue.code:
                dialogue.messages.append({"role": "user", "content": NO_CODE_FEEDBACK})
                continue
            hint = hints[dialogue.problem["problem_id"]]
            if isinstance(hint, TeacherError):
                self._end_early(dialogue, "teacher_error")
                continue
            dialogue.add_usage(hint)
            dialogue.messages += execution_turns(execution, hint.content.strip(), config.execution_role)

    def result(self) -> DialoguesResult:
        """Verified dialogues and rejects as rows, the drop counts and the pass rate by turn."""
        questioner, programmer, config = self.questioner, self.programmer, self.config
        # The method enters the fingerprint only when given, so verified_dialogues' ids stay what they were.
        parts = (config, questioner.model, programmer.model, self.versions) + ((self.method,) if self.method else ())
        config_fp = record_config(fingerprint(*parts), self.home, stage=VERIFIED_DIALOGUES, config=config,
                                  questioner_model=questioner.model, programmer_model=programmer.model,
                                  prompt_versions=self.versions, method=self.method)
        dialogues, rejects = [], []
        for dialogue in self.work.values():
            p = dialogue.problem
            row = {
                "dialogue_id": hashlib.sha256(f"{p['problem_id']}:{config_fp}".encode()).hexdigest()[:16],
                "problem_id": p["problem_id"], **{k: p[k] for k in ("seed_id", "source", "path", "license")},
                "teacher_model": questioner.model, "programmer_model": programmer.model,
                "prompt_version": f"{p['prompt_version']}+{self.versions}",
                "config_fingerprint": record_config(fingerprint(p["config_fingerprint"], config_fp), self.home,
                                                    problems_fingerprint=p["config_fingerprint"],
                                                    dialogues_fingerprint=config_fp),
                "method": self.method or p.get("method") or DEFAULT_METHOD, "parent_id": p.get("parent_id"),
                "language": p.get("language") or LANGUAGE,
                "feedback_mode": config.feedback_mode, "instruction": p["instruction"], "solution": dialogue.code,
                "tests": p["tests"], "tests_source": p.get("tests_source"), "task_messages": task_messages(p),
                "messages": dialogue.messages + ([passing_run_turn(p["tests"], dialogue.verdicts[-1],
                                                                   config.execution_role)]
                                                 if config.aiev_complete and dialogue.passed_turn else []),
                "turns": dialogue.turns,
                "passed_turn": dialogue.passed_turn, "verdicts": dialogue.verdicts,
                "prompt_tokens": dialogue.prompt_tokens, "completion_tokens": dialogue.completion_tokens,
            }
            if dialogue.passed_turn is not None:
                dialogues.append(row)
                continue
            reason = dialogue.reason
            if reason is None:
                reason = "no_code_after_max_turns" if not dialogue.code else "unsolved_after_max_turns"
                self.counts[reason] += 1
            rejects.append({**row, "reason": reason})
        n = len(self.work)
        rates = [sum(1 for d in self.work.values() if d.passed_turn is not None and d.passed_turn <= k) / n if n
                 else 0.0 for k in range(1, config.max_turns + 1)]
        return DialoguesResult(dialogues, rejects, self.counts, rates,
                               sum(d.prompt_tokens for d in self.work.values()),
                               sum(d.completion_tokens for d in self.work.values()))


def run_dialogues(problems: list[dict], questioner: TeacherClient, programmer: TeacherClient, runner: CachedRunner,
                  config: DialoguesConfig, log=None, home: Home | None = None,
                  method: str | None = None) -> DialoguesResult:
    """Dialogues for `problems` through the phases of the module docstring; configs recorded under `home`. `method`
    names the rows' method (default: each problem's own)."""
    loop = DialogueLoop(problems, questioner, programmer, runner, config, log, home, method)
    loop.run()
    return loop.result()
