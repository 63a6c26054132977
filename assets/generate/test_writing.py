"""Tests for a (problem, solution) pair, written by the teacher and run in the sandbox: the phases OSS-Instruct and the
import of external datasets share.

1. `_ask_tests` (oss_tests prompt): a fresh conversation holding the problem and the solution asks for "### Tests";
   tests that break a rule the gates need (too few asserts, none that call the function) get one turn told what is
   wrong (format_repair prompt);
2. `_run_and_repair`: solution + tests in the sandbox; a failing run's execution output goes back (problem_repair
   prompt), up to `repair_turns` times. The solution and tests the reply holds replace the old ones, except that with
   `repair_solution` off only the tests may change (an imported solution is what is being verified). The problem
   statement is never replaced: a small teacher fills a repair's "### Problem" with an account of the failure ("The
   reference solution fails its own tests because ..."; 2 of the 8 rows the bundled 1.5B kept in C++, JavaScript and
   Rust), which would become the row's instruction;
3. `_gate`: the questioner's test-quality gates (the tests fail on the trivial mutant; a salted rerun passes).

A subclass sets `config` (temperature, max_tokens, seed, min_asserts, format_repair, repair_turns), `client`,
`runner`, `versions` and the three prompts, and says what a rejected item becomes (`reject`). `language` (a
code_languages.CodeLanguage, Python by default) decides how code is read from replies, how tests are checked, what
runs in the sandbox and what the gate's mutant is.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from assets.generate.code_languages import CODE_LANGUAGES, CodeLanguage
from assets.generate.config import PYTHON
from assets.generate.programs import execution_feedback, verdict_row
from assets.generate.questioner import QUESTIONER_STOP, REPAIRABLE
from assets.generate.replies import Rejected, sections
from assets.generate.teacher_rounds import ask_round, sampling, tokens
from assets.prompts import Prompt
from resources.llm import ChatRequest, Completion, TeacherClient, TeacherError
from resources.verdict_cache import CachedRunner


def tests_block(body: str | None) -> str | None:
    """The first Python block with an assert in `body`, else its first Python block."""
    return CODE_LANGUAGES[PYTHON].tests_block(body)


def repaired_parts(text: str, names: list[str], language: CodeLanguage = CODE_LANGUAGES[PYTHON],
                   ) -> tuple[str | None, str | None, str | None]:
    """(problem, solution, tests) a repair reply holds, each None when absent. Without section headings, a bare block
    defining one of the solution's `names` is the solution and a block of checks the tests."""
    found = sections(text)
    problem = (found.get("problem") or "").strip() or None
    solution = language.first_block(found.get("solution"))
    tests = language.tests_block(found.get("tests")) if "tests" in found else None
    if solution is None and tests is None:
        for block in language.blocks(text):
            if set(names) & set(language.functions(block)):
                solution = solution or block
            elif language.count_checks(block):
                tests = tests or block
    return problem, solution, tests


@dataclass(kw_only=True)
class TestedItem:
    """What the phases read and write of one pair; a subclass adds where the pair came from and its `key`."""
    exchange: list[dict] = field(default_factory=list)  # the teacher turns after the prompts' fixed parts
    tests_messages: list[dict] = field(default_factory=list)  # the whole tests conversation, repairs included
    instruction: str | None = None
    solution: str | None = None
    tests: str | None = None
    entry_point: str | None = None
    verdicts: list[dict] = field(default_factory=list)
    runs: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def key(self) -> str:
        raise NotImplementedError


class TestWriting:
    """The phases over a list of items; see the module docstring for what a subclass provides."""

    client: TeacherClient
    runner: CachedRunner
    versions: str
    tests_prompt: Prompt
    repair_prompt: Prompt
    format_prompt: Prompt
    repair_solution: bool = True
    language: CodeLanguage = CODE_LANGUAGES[PYTHON]
    counts: Counter

    def reject(self, item: TestedItem, reason: str, detail: str = "") -> None:
        raise NotImplementedError

    def ask(self, items: list[TestedItem], conversation, stop: list[str]) -> list[tuple[TestedItem, str]]:
        """One round: `conversation(item)` is each request; (item, reply) for the answered ones, each reply appended
        to the item's exchange. A teacher error rejects its item."""
        if not items:
            return []
        requests = {item.key: conversation(item) for item in items}
        answers = ask_round(self.client, [
            ChatRequest(key, messages, self.config.temperature, self.config.max_tokens, self.versions,
                        sampling(self.config.seed, stop=stop)) for key, messages in requests.items()])
        replied = []
        for item in items:
            answer = answers[item.key]
            if isinstance(answer, TeacherError):
                self.reject(item, "teacher_error", str(answer)[:300])
                continue
            self._count(item, answer)
            item.exchange += [requests[item.key][-1], {"role": "assistant", "content": answer.content}]
            replied.append((item, answer.content))
        return replied

    @staticmethod
    def _count(item: TestedItem, answer: Completion) -> None:
        prompt_tokens, completion_tokens = tokens(answer)
        item.prompt_tokens += prompt_tokens
        item.completion_tokens += completion_tokens

    def _ask_tests(self, items: list[TestedItem]) -> list[TestedItem]:
        for item in items:
            item.tests_messages = self.tests_prompt.render(problem=item.instruction, solution=item.solution.strip())
        kept, unusable = [], []
        for item, reply in self.ask(items, lambda i: i.tests_messages, QUESTIONER_STOP):
            item.tests_messages = item.tests_messages + [{"role": "assistant", "content": reply}]
            tests = self.language.tests_block(sections(reply).get("tests", reply))
            checked = (self.language.check_tests(item.solution, tests, self.config.min_asserts) if tests
                       else Rejected("no_tests_code"))
            if isinstance(checked, Rejected) and self.config.format_repair and checked.reason in REPAIRABLE:
                told = self.format_prompt.render(problem=self.language.repair_message(checked.reason))
                item.tests_messages = item.tests_messages + told
                unusable.append(item)
            elif isinstance(checked, Rejected):
                self.reject(item, checked.reason, checked.detail)
            else:
                item.tests, item.entry_point = tests, checked
                kept.append(item)
        kept += self._apply_repairs(self.ask(unusable, lambda i: i.tests_messages, QUESTIONER_STOP))
        chosen = {id(item) for item in kept}
        return [item for item in items if id(item) in chosen]  # in window order: the first of two duplicates wins

    def _run_and_repair(self, items: list[TestedItem]) -> list[TestedItem]:
        """The items whose solution passes its tests, after at most `repair_turns` repairs each."""
        passed: list[TestedItem] = []
        active = items
        for repair in range(self.config.repair_turns + 1):
            if not active:
                break
            verdicts = self.runner.run([self._program(i.key, i.solution, i.tests) for i in active])
            failing = []
            for item, verdict in zip(active, verdicts):
                item.runs += 1
                item.verdicts.append(verdict_row(verdict, item.runs))
                if verdict.passed:
                    passed.append(item)
                elif repair < self.config.repair_turns:
                    failing.append(item)
                    item.tests_messages = item.tests_messages + self.repair_prompt.render(
                        execution=execution_feedback(verdict))
                else:
                    self.reject(item, "fails_after_repair", verdict.status)
            active = self._apply_repairs(self.ask(failing, lambda i: i.tests_messages, QUESTIONER_STOP))
        return passed

    def _apply_repairs(self, replies: list[tuple[TestedItem, str]]) -> list[TestedItem]:
        """Items whose repair reply gives a usable solution and tests (the parts it leaves out stay; the problem always
        stays)."""
        usable = []
        for item, reply in replies:
            item.tests_messages = item.tests_messages + [{"role": "assistant", "content": reply}]
            _, solution, tests = repaired_parts(reply, self.language.functions(item.solution), self.language)
            if not self.repair_solution:
                solution = None
            solution, tests = solution or item.solution, tests or item.tests
            if not self.language.parses(solution):
                self.reject(item, "solution_syntax_error", "repair")
                continue
            if tests is None:
                self.reject(item, "no_tests_code", "repair")
                continue
            checked = self.language.check_tests(solution, tests, self.config.min_asserts)
            if isinstance(checked, Rejected):
                self.reject(item, checked.reason, "repair")
                continue
            item.solution, item.tests, item.entry_point = solution, tests, checked
            usable.append(item)
        return usable

    def _program(self, key: str, solution: str, tests: str, **extra) -> dict:
        """The sandbox program of a solution and its tests, in this run's language."""
        return {"id": key, "code": self.language.program(solution, tests), "language": self.language.name, **extra}

    def _gate(self, items: list[TestedItem]) -> list[TestedItem]:
        """The questioner's gates: a rerun (salted, so it really runs again) must pass, and the tests must fail on the
        solution with every function body replaced by `return None` (Python) or by one that throws or panics."""
        gated, programs = [], []
        for item in items:
            mutant = self.language.mutant(item.solution)
            if mutant is None:
                self.reject(item, "tests_pass_trivial_solution", "no function to mutate")
                continue
            gated.append(item)
            programs += [self._program(f"{item.key}:mutant", mutant, item.tests),
                         self._program(f"{item.key}:rerun", item.solution, item.tests, salt="rerun")]
        verdicts = self.runner.run(programs)
        kept = []
        for index, item in enumerate(gated):
            mutant, rerun = verdicts[2 * index], verdicts[2 * index + 1]
            # Gate runs are turn 0; the rerun comes last, so a kept row's last verdict is a pass.
            item.verdicts += [verdict_row(mutant, 0), verdict_row(rerun, 0)]
            if not rerun.passed:
                self.reject(item, "flaky_tests", rerun.status)
            elif mutant.passed:
                self.reject(item, "tests_pass_trivial_solution")
            else:
                kept.append(item)
        return kept
