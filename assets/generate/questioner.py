"""The questioner role of oss_instruct_problems, in named phases over all seeds at once:

1. `ask_turns`: ask for a problem per seed, parse the reply, run the reference against its tests in the sandbox, and
   send a failing reference's execution output (or a reply that broke the format) back for a repair (AIEV-Instruct),
   up to `max_turns`;
2. `adopt_reference_outputs`: a last chance for references whose tests only disagree on expected values;
3. `gate`: the test-quality gates in the sandbox (the tests fail on a `return None` mutant; a rerun agrees);
4. `problem_rows`: the kept problems as rows, the first of two seeds that led to the same problem winning.

A seed whose problem was dropped starts again from nothing, sampled differently, up to `fresh_attempts` times
(KodCode's persistence: otherwise only the problems a small teacher gets right at once survive). The same phases
write problems from other things than seeds: a `QuestionerTask` names the prompt, what fills it and which field of
the item identifies it (the derived methods of assets/generate/methods pass a verified problem instead of a seed).

Every answer and verdict is cached, so re-running repeats nothing. Each drop is counted and kept with its reason.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from assets.fingerprints import fingerprint, record_config
from assets.generate.config import LANGUAGE, QUESTIONER_TESTS, REFERENCE_OUTPUTS, ProblemsConfig
from assets.generate.programs import (
    execution_feedback,
    expected_from_outputs,
    outputs_program,
    program_with_tests,
    trivial_mutant,
    verdict_row,
)
from assets.generate.replies import ParsedProblem, Rejected, parse_problem_reply
from assets.generate.teacher_rounds import ask_round, sampling, tokens
from assets.keys import OSS_INSTRUCT_PROBLEMS
from assets.prompts import load_prompt
from resources.home import Home
from resources.llm import ChatRequest, TeacherClient, TeacherError
from resources.progress import activity
from resources.verdict_cache import CachedRunner

# Replies that broke a rule the gates need get one more turn, told exactly what is wrong.
REPAIRABLE = {
    "too_few_asserts": "the tests have fewer than the required `assert` statements",
    "no_tests_code": "there is no ### Tests section with a ```python block",
    "no_solution_code": "there is no ### Solution section with a ```python block",
    "tests_do_not_call_solution": "the tests never call the function defined in the solution",
    "tests_redefine_solution": "the tests define the solution's function again",
}
# A fourth section ("### Explanation ...") is never used: stop generating there instead of paying for it.
QUESTIONER_STOP = ["\n### Explanation", "\n**Explanation", "\n### Note"]


@dataclass(frozen=True)
class QuestionerTask:
    """What the questioner writes a problem from: the prompt, its variables for one item, the item field that
    identifies it, and the field recorded as the problem's parent (None: a seed, no parent)."""

    method: str
    prompt: str
    variables: Callable[[dict], dict]
    key: str = "seed_id"
    parent: str | None = None


FROM_SEEDS = QuestionerTask("function_instruct", "oss_instruct", lambda seed: {"seed": seed["code"].rstrip()})
# A teacher outage is no sign of a hard problem: those items are not started again.
NOT_RETRIED = {"teacher_error"}
# Fresh attempts sample at least this hot: a rerun of the same conversation at 0.2 mostly repeats the failure.
FRESH_TEMPERATURE = 0.7


def problem_id(instruction: str, tests: str) -> str:
    return hashlib.sha256(f"{' '.join(instruction.split())}\n{tests.strip()}".encode()).hexdigest()[:16]


@dataclass
class _Work:
    seed: dict
    messages: list[dict]  # the whole request: system and worked example included
    prefix: int  # messages[:prefix] is the template's fixed part; the rest is this seed's exchange
    parsed: ParsedProblem | None = None
    tests_source: str = QUESTIONER_TESTS
    verdicts: list[dict] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def replies(self) -> list[str]:
        """The teacher's replies so far (the first one and every repair)."""
        return [m["content"] for m in self.messages[self.prefix:] if m["role"] == "assistant"]

    @property
    def reply(self) -> str:
        """The teacher's last reply ("" before the first)."""
        replies = self.replies
        return replies[-1] if replies else ""

    @property
    def repeated(self) -> bool:
        """Whether the last reply is word for word one the teacher gave this item before. A teacher that answers a
        repair with its earlier reply is stuck: the same code fails the same way, and the next repair repeats it
        again (a demo run, 2026-12-03: 3 of 4 first repairs of the 1.5B repeated the reply, and all 3 second repairs
        did), so such an item skips its remaining repair turns."""
        replies = self.replies
        return replies[-1] in replies[:-1] if replies else False


@dataclass
class ProblemsResult:
    problems: list[dict]
    rejects: list[dict]
    counts: Counter
    repairs_used: Counter  # repair turns -> problems kept
    prompt_tokens: int
    completion_tokens: int
    sandbox_runs: int
    retried: Counter = field(default_factory=Counter)  # drop reasons of attempts that were started again


class Questioner:
    """One generation over a list of seeds: the prompts and config fingerprint, and the rejects counted so far."""

    def __init__(self, client: TeacherClient, runner: CachedRunner, config: ProblemsConfig, log=None,
                 home: Home | None = None, task: QuestionerTask = FROM_SEEDS,
                 stage: str = OSS_INSTRUCT_PROBLEMS) -> None:
        self.client, self.runner, self.config, self.log, self.task = client, runner, config, log, task
        self.attempt = 0  # fresh starts so far
        self.prompt = load_prompt(task.prompt, config.prompt_version)
        self.repair = load_prompt("problem_repair", config.repair_prompt_version)
        self.format_repair = load_prompt("format_repair", config.repair_prompt_version)
        self.versions = f"{self.prompt.version}+{self.repair.version}+{self.format_repair.version}"
        self.config_fp = record_config(fingerprint(config, client.model, self.versions, task.method), home,
                                       stage=stage, method=task.method, config=config, teacher_model=client.model,
                                       prompt_versions=self.versions)
        self.counts: Counter = Counter()
        self.retried: Counter = Counter()  # reasons that sent an item round again
        self.rejects: list[dict] = []

    def reject(self, work: _Work, reason: str, detail: str = "") -> None:
        self.counts[reason] += 1
        self.rejects.append({"problem_id": None, "method": self.task.method,
                             "parent_id": work.seed[self.task.parent] if self.task.parent else None,
                             "seed_id": work.seed["seed_id"], "source": work.seed["source"],
                             "reason": reason, "detail": detail, "reply": work.reply,
                             "teacher_model": self.client.model,
                             "messages": work.messages[work.prefix:], "verdicts": work.verdicts,
                             "key": self.key(work)})

    def key(self, work: _Work) -> str:
        return work.seed[self.task.key]

    def start(self, seed: dict) -> _Work:
        messages = self.prompt.render(**self.task.variables(seed))
        return _Work(seed, messages, prefix=len(messages) - 1)

    def _sampling(self) -> tuple[float, dict]:
        """(temperature, extra parameters) of this attempt: a fresh attempt samples hotter with another seed."""
        config = self.config
        if self.attempt == 0:
            return config.temperature, sampling(config.seed, stop=QUESTIONER_STOP)
        return (max(config.temperature, FRESH_TEMPERATURE),
                sampling((config.seed or 0) + self.attempt, stop=QUESTIONER_STOP))

    def ask_turns(self, works: list[_Work]) -> tuple[list[tuple[_Work, int]], list[_Work]]:
        """(references that passed their tests with the repair turns they took, references still failing when the
        repairs ran out)."""
        active = {self.key(w): w for w in works}
        passed: list[tuple[_Work, int]] = []
        exhausted: list[_Work] = []
        for turn in range(1, self.config.max_turns + 1):
            if not active:
                break
            with activity(f"questioner turn {turn}" + (f", fresh attempt {self.attempt}" if self.attempt else "")):
                to_run, next_active = self._ask(active, turn)
            verdicts = self.runner.run([{"id": self.key(w),
                                         "code": program_with_tests(w.parsed.solution, w.parsed.tests)}
                                        for w in to_run])
            for work, verdict in zip(to_run, verdicts):
                work.verdicts.append(verdict_row(verdict, turn))
                if verdict.passed:
                    passed.append((work, turn - 1))
                elif turn < self.config.max_turns and not work.repeated:
                    work.messages = work.messages + self.repair.render(execution=execution_feedback(verdict))
                    next_active[self.key(work)] = work
                else:
                    exhausted.append(work)
            if self.log:
                self.log.info(f"questioner turn {turn}: {len(active)} asked, {len(to_run)} parsed, "
                              f"{sum(v.passed for v in verdicts)} references passed, {len(next_active)} sent back "
                              f"for repair, {sum(self.counts.values())} rejected so far")
            active = next_active
        return passed, exhausted

    def _ask(self, active: dict[str, _Work], turn: int) -> tuple[list[_Work], dict[str, _Work]]:
        """One round of questions: (parsed replies to run, replies sent back for a format repair)."""
        config = self.config
        temperature, extra = self._sampling()
        answers = ask_round(self.client, [
            ChatRequest(sid, w.messages, temperature, config.max_tokens, self.versions, extra)
            for sid, w in active.items()])
        to_run: list[_Work] = []
        again: dict[str, _Work] = {}
        for sid, work in active.items():
            answer = answers[sid]
            if isinstance(answer, TeacherError):
                self.reject(work, "teacher_error", str(answer)[:300])
                continue
            p_tok, c_tok = tokens(answer)
            work.prompt_tokens += p_tok
            work.completion_tokens += c_tok
            work.messages = work.messages + [{"role": "assistant", "content": answer.content}]
            parsed = parse_problem_reply(answer.content, config.min_asserts)
            if isinstance(parsed, Rejected):
                if parsed.reason in REPAIRABLE and turn < config.max_turns and not work.repeated:
                    work.messages = work.messages + self.format_repair.render(problem=REPAIRABLE[parsed.reason])
                    again[sid] = work
                else:
                    self.reject(work, parsed.reason, parsed.detail)
                continue
            if work.parsed is not None:
                # A repair keeps the task as first stated: small teachers put an account of the failure where the
                # problem goes ("The reference solution fails its own tests because ..."; test_writing.py).
                parsed.instruction = work.parsed.instruction
            work.parsed = parsed
            to_run.append(work)
        return to_run, again

    def gate(self, passed: list[tuple[_Work, int]]) -> list[tuple[_Work, int]]:
        """The test-quality gates, in the sandbox: the tests must fail on a trivially wrong solution, and a rerun of
        the reference must give the same verdict. Returns the problems that pass both."""
        gated: list[tuple[_Work, int]] = []
        programs = []
        for work, repairs in passed:
            mutant = trivial_mutant(work.parsed.solution)
            if mutant is None:  # no function body to replace: nothing shows the tests can tell right from wrong
                self.reject(work, "tests_pass_trivial_solution", "no function to mutate")
                continue
            sid = self.key(work)
            gated.append((work, repairs))
            programs += [
                {"id": f"{sid}:rerun", "code": program_with_tests(work.parsed.solution, work.parsed.tests),
                 "salt": "rerun"},
                {"id": f"{sid}:mutant", "code": program_with_tests(mutant, work.parsed.tests)},
            ]
        verdicts = self.runner.run(programs)
        kept = []
        for index, (work, repairs) in enumerate(gated):
            rerun, mutant = verdicts[2 * index], verdicts[2 * index + 1]
            work.verdicts.append(verdict_row(rerun, 0))  # turn 0: gate runs, not dialogue turns
            if not rerun.passed:
                self.reject(work, "flaky_tests", rerun.status)
            elif mutant.passed:
                self.reject(work, "tests_pass_trivial_solution")
            else:
                kept.append((work, repairs))
        return kept

    def attempt_phases(self, works: list[_Work]) -> list[tuple[_Work, int]]:
        """Phases 1-3 for one attempt: the items whose problem passed every gate, with the repair turns taken."""
        config = self.config
        passed, exhausted = self.ask_turns(works)
        rescued = adopt_reference_outputs(exhausted, self.runner, self.key) if config.reference_outputs and exhausted \
            else []
        passed += [(work, len(work.replies) - 1) for work in rescued]
        for work in exhausted:
            if work not in rescued:
                self.reject(work, "reference_fails_tests", work.verdicts[-1]["status"])
        return self.gate(passed)

    def problem_rows(self, kept: list[tuple[_Work, int, int]]) -> list[dict]:
        """The kept problems as rows; two seeds can lead to the same problem, and the first one wins."""
        unique: dict[str, dict] = {}
        for work, repairs, attempts in kept:
            p = work.parsed
            row = {
                "problem_id": problem_id(p.instruction, p.tests), **{k: work.seed[k] for k in
                                                                     ("seed_id", "source", "path", "license")},
                "method": self.task.method, "parent_id": work.seed[self.task.parent] if self.task.parent else None,
                "attempts": attempts, "teacher_model": self.client.model, "prompt_version": self.versions,
                "config_fingerprint": self.config_fp, "language": LANGUAGE, "instruction": p.instruction,
                "entry_point": p.entry_point,
                "solution": p.solution, "tests": p.tests, "n_asserts": p.n_asserts,
                "tests_source": work.tests_source, "repair_turns": repairs,
                "messages": work.messages[work.prefix:], "verdicts": work.verdicts,
            }
            if row["problem_id"] in unique:
                self.reject(work, "duplicate_problem", unique[row["problem_id"]]["seed_id"])
            else:
                unique[row["problem_id"]] = row
        return list(unique.values())


def generate_problems(seeds: list[dict], client: TeacherClient, runner: CachedRunner, config: ProblemsConfig,
                      log=None, home: Home | None = None, task: QuestionerTask = FROM_SEEDS,
                      stage: str = OSS_INSTRUCT_PROBLEMS) -> ProblemsResult:
    """Problems for `seeds` (or the items `task` reads) through the phases of the module docstring, each dropped
    item starting again up to `config.fresh_attempts` times; configs recorded under `home`."""
    questioner = Questioner(client, runner, config, log, home, task, stage)
    pending, kept, works = list(seeds), [], []
    for attempt in range(config.fresh_attempts + 1):
        questioner.attempt = attempt
        first_reject = len(questioner.rejects)
        attempt_works = [questioner.start(seed) for seed in pending]
        works += attempt_works
        kept += [(work, repairs, attempt + 1) for work, repairs in questioner.attempt_phases(attempt_works)]
        superseded = [r for r in questioner.rejects[first_reject:] if r["reason"] not in NOT_RETRIED]
        dropped = {r["key"] for r in superseded}
        if attempt == config.fresh_attempts or not dropped:
            break
        # Dropped items go round again; only the last attempt's reason stays a reject (earlier ones are counted).
        questioner.rejects = [r for r in questioner.rejects if not any(r is x for x in superseded)]
        for reject in superseded:
            questioner.counts[reject["reason"]] -= 1
            questioner.retried[reject["reason"]] += 1
        pending = [item for item in pending if item[task.key] in dropped]
        if log:
            log.info(f"questioner attempt {attempt + 1}: {len(dropped)} dropped, starting them again")
    questioner.counts += Counter()  # drop the zero counts a superseded reason leaves
    problems = questioner.problem_rows(kept)
    for reject in questioner.rejects:
        reject.pop("key", None)
    return ProblemsResult(problems, questioner.rejects, questioner.counts, Counter(r for _, r, _ in kept),
                          sum(w.prompt_tokens for w in works), sum(w.completion_tokens for w in works),
                          runner.executed, questioner.retried)


def adopt_reference_outputs(works: list[_Work], runner: CachedRunner,
                            key: Callable[[_Work], str] = lambda w: w.seed["seed_id"]) -> list[_Work]:
    """Second chance for references that still fail their tests after every repair: when the tests' equality
    asserts only disagree on expected values, take the values the reference computes. Small teachers miscompute
    expected values far more often than they write wrong code; the problem is then kept only if the programmer's
    independent first answer reproduces the same outputs (verified_dialogues), which is the agreement check."""
    candidates = [(w, outputs_program(w.parsed.solution, w.parsed.tests)) for w in works]
    candidates = [(w, program) for w, program in candidates if program]
    verdicts = runner.run([{"id": key(w), "code": program} for w, program in candidates])
    rescued = []
    for (work, _), verdict in zip(candidates, verdicts):
        tests = expected_from_outputs(work.parsed.tests, verdict.stdout) if verdict.passed else None
        if tests is None or tests == work.parsed.tests:
            continue
        work.parsed.tests = tests
        work.tests_source = REFERENCE_OUTPUTS
        rescued.append(work)
    return rescued
