"""Code-Feedback's code correction: a verified solution is given one realistic bug that its tests catch; the dialogue
shows the problem, the buggy code and its real execution output, and the programmer diagnoses and fixes it.

    run(inputs, config, ctx) -> MethodResult     # inputs.dialogues: the verified parent dialogues

Phases, each over all parents at once:
1. `_mutation_bugs`: the seeded candidates of mutations.py run with the parent's tests, a few per parent in each
   sandbox batch; the first in order that fails with status "failed" is the bug (a mutant that times out is an
   infinite loop, which teaches nothing about reading an error);
2. `_teacher_bugs` (bug_source "teacher", or "mutation_then_teacher" for the parents no mutant was caught on): the
   teacher rewrites the solution with one bug (assets/prompts/bug_writer.v<N>.txt), kept if the tests fail on it;
3. `_fix`: the programmer answers (assets/prompts/code_correction.v<N>.txt); the fixed code must pass the tests; a
   failing fix's execution output goes back as the next user turn while turns remain;
4. `_row`: the stored dialogue (no system turn, no worked example), kept or rejected with its reason.

A row's `mutation` key ("<kind>: <description>", or why no bug was found) is transient, like `task_messages`.
"""

from __future__ import annotations

import ast
import io
import tokenize
from collections import Counter
from dataclasses import dataclass, field

from assets.fingerprints import fingerprint, record_config
from assets.generate.dialogue_loop import execution_turns
from assets.generate.methods.base import MethodContext, MethodInputs, MethodResult, dialogue_id, provenance
from assets.generate.methods.config import CodeCorrectionConfig
from assets.generate.methods.mutations import MUTATIONS_VERSION, Mutant, candidates
from assets.generate.programs import execution_feedback, program_with_tests, verdict_row
from assets.generate.replies import extract_code, find_entry_point
from assets.generate.teacher_rounds import ask_round, sampling, tokens
from assets.keys import METHOD_DIALOGUES
from assets.prompts import Prompt, load_prompt
from resources.llm import ChatRequest, TeacherError
from resources.sandbox import Verdict

METHOD = "code_correction"
BUG_SOURCES = ("mutation", "teacher", "mutation_then_teacher")
# Mutants per parent in one sandbox batch. The bug is the first caught in the seeded order whatever the batch size,
# so this only trades wasted runs (after an early catch) against rounds.
MUTANTS_PER_ROUND = 4
TEACHER_BUG = "teacher"  # the kind recorded for a bug the teacher wrote
FIX_REQUEST = "My code fails the tests. Find the bug, explain what is wrong, and give the complete corrected code."
RETRY_REQUEST = "The corrected code still fails the tests. Find what is still wrong and give the complete code."


@dataclass
class _Correction:
    parent: dict
    entry_point: str | None
    bug: Mutant | None = None
    bug_verdict: Verdict | None = None
    bug_prompt: str | None = None  # the bug writer's prompt version, when the teacher wrote the bug
    lead: list[dict] = field(default_factory=list)  # the system turn and the worked example: sent, not stored
    messages: list[dict] = field(default_factory=list)
    verdicts: list[dict] = field(default_factory=list)
    code: str | None = None
    turns: int = 0
    passed_turn: int | None = None
    reason: str | None = None
    detail: str = ""  # how the bug was made, or why none was
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def key(self) -> str:
        return self.parent["dialogue_id"]

    def add_usage(self, completion) -> None:
        p, c = tokens(completion)
        self.prompt_tokens += p
        self.completion_tokens += c


def check_config(config: CodeCorrectionConfig) -> None:
    if config.bug_source not in BUG_SOURCES:
        raise ValueError(f"code_correction config bug_source={config.bug_source!r}: use one of "
                         f"{', '.join(BUG_SOURCES)}")


def _outcomes(statuses: Counter) -> str:
    return ", ".join(f"{n} {status}" for status, n in sorted(statuses.items()))


def _mutation_bugs(work: list[_Correction], config: CodeCorrectionConfig, ctx: MethodContext) -> int:
    """Each correction's bug: its first mutant, in the seeded order, that the tests catch. Returns mutants run."""
    queues = {c.key: candidates(c.parent.get("solution") or "", config.seed, c.key)[:config.max_mutants]
              for c in work}
    statuses = {c.key: Counter() for c in work}
    open_ = [c for c in work if queues[c.key]]
    start, ran = 0, 0
    while open_:
        batch = [(c, i, mutant) for c in open_
                 for i, mutant in enumerate(queues[c.key][start:start + MUTANTS_PER_ROUND], start)]
        verdicts = ctx.runner.run([{"id": f"{c.key}:mutant{i}", "code": program_with_tests(m.code, c.parent["tests"]),
                                    "timeout_s": config.mutant_timeout_s} for c, i, m in batch])
        ran += len(batch)
        for (c, _, mutant), verdict in zip(batch, verdicts):
            if c.bug is not None:
                continue
            statuses[c.key][verdict.status] += 1
            if verdict.status == "failed":
                c.bug, c.bug_verdict = mutant, verdict
                c.detail = f"{mutant.kind}: {mutant.description}"
        start += MUTANTS_PER_ROUND
        open_ = [c for c in open_ if c.bug is None and start < len(queues[c.key])]
    for c in work:
        if c.bug is None:
            tried = len(queues[c.key])
            c.detail = (f"{tried} mutants, none caught: {_outcomes(statuses[c.key])}" if tried
                        else "nothing in the solution to mutate")
    return ran


def _comments(code: str) -> list[tokenize.TokenInfo]:
    return [t for t in tokenize.generate_tokens(io.StringIO(code).readline) if t.type == tokenize.COMMENT]


def without_new_comments(code: str, original: str) -> str:
    """`code` without the comments `original` lacks: a teacher asked for a bug tends to mark it ("# bug: ...")."""
    try:
        known = {t.string for t in _comments(original)}
        new = [t for t in _comments(code) if t.string not in known]
    except (tokenize.TokenError, SyntaxError):
        return code
    lines = code.splitlines(keepends=True)
    for comment in new:
        row, col = comment.start
        line = lines[row - 1]
        head = line[:col].rstrip()
        newline = "\n" if line.endswith("\n") else ""
        lines[row - 1] = head + newline if head else ""  # a line that held only the comment goes
    return "".join(lines)


def _same_meaning(a: str, b: str) -> bool:
    try:
        return ast.dump(ast.parse(a)) == ast.dump(ast.parse(b))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return a.strip() == b.strip()


def _teacher_bugs(pending: list[_Correction], config: CodeCorrectionConfig, ctx: MethodContext,
                  prompt: Prompt) -> None:
    """A bug for each pending correction written by the teacher, kept when the tests fail on it; else a reason."""
    if not pending:
        return
    answers = ask_round(ctx.teacher, [
        ChatRequest(f"{c.key}:bug", prompt.render(problem=c.parent["instruction"], solution=c.parent["solution"]),
                    config.temperature, config.max_tokens, prompt.version, sampling(config.seed))
        for c in pending])
    runnable: list[tuple[_Correction, str]] = []
    for c in pending:
        answer = answers[f"{c.key}:bug"]
        if isinstance(answer, TeacherError):
            c.reason = "teacher_error"
            continue
        c.add_usage(answer)
        c.bug_prompt = prompt.version
        code = extract_code(answer.content, c.entry_point)
        if code is None:
            c.reason = "no_code_in_bug"
        elif _same_meaning(code, c.parent["solution"]):
            c.reason = "bug_unchanged"
        else:
            runnable.append((c, without_new_comments(code, c.parent["solution"])))
    verdicts = ctx.runner.run([{"id": f"{c.key}:bug", "code": program_with_tests(code, c.parent["tests"])}
                               for c, code in runnable])
    for (c, code), verdict in zip(runnable, verdicts):
        if verdict.status == "failed":
            c.bug, c.bug_verdict = Mutant(TEACHER_BUG, "a bug the teacher wrote", code), verdict
            c.detail = f"{TEACHER_BUG}: a bug the teacher wrote"
        else:
            c.reason = "bug_not_caught"
            c.detail = f"the teacher's buggy code ran with status {verdict.status}"


def _open_dialogue(c: _Correction, prompt: Prompt) -> None:
    execution = execution_turns(execution_feedback(c.bug_verdict), FIX_REQUEST, "user")[0]["content"]
    turns = prompt.render(problem=c.parent["instruction"].strip(), code=c.bug.code.strip("\n"), execution=execution)
    c.lead, c.messages = turns[:-1], [turns[-1]]
    c.verdicts = [verdict_row(c.bug_verdict, 0)]


def _fix(work: list[_Correction], config: CodeCorrectionConfig, ctx: MethodContext, prompt: Prompt) -> None:
    """The programmer's fixes, turn by turn over every open dialogue, each run with the parent's tests."""
    active = {c.key: c for c in work if c.bug is not None and c.reason is None}
    for c in active.values():
        _open_dialogue(c, prompt)

    def end(c: _Correction, reason: str) -> None:
        c.reason = reason
        del active[c.key]

    for turn in range(1, config.max_turns + 1):
        if not active:
            break
        answers = ask_round(ctx.programmer, [
            ChatRequest(key, c.lead + c.messages, config.temperature, config.max_tokens, prompt.version,
                        sampling(config.seed)) for key, c in active.items()])
        runnable = []
        for key, c in list(active.items()):
            answer = answers[key]
            if isinstance(answer, TeacherError):
                end(c, "teacher_error")
                continue
            c.add_usage(answer)
            c.turns = turn
            c.messages.append({"role": "assistant", "content": answer.content})
            c.code = extract_code(answer.content, c.entry_point)
            if c.code is None:
                end(c, "no_code_in_fix")
            elif c.code.strip() == c.bug.code.strip():
                end(c, "fix_unchanged")
            else:
                runnable.append(c)
        verdicts = ctx.runner.run([{"id": f"{c.key}:fix{turn}", "code": program_with_tests(c.code, c.parent["tests"])}
                                   for c in runnable])
        for c, verdict in zip(runnable, verdicts):
            c.verdicts.append(verdict_row(verdict, turn))
            if verdict.passed:
                c.passed_turn = turn
                del active[c.key]
            elif turn == config.max_turns:
                end(c, "fix_fails_tests")
            else:
                c.messages += execution_turns(execution_feedback(verdict), RETRY_REQUEST, "user")


def _row(c: _Correction, ctx: MethodContext, fix_version: str, config_fp: str) -> dict:
    p = c.parent
    versions = f"{fix_version}+{c.bug_prompt}" if c.bug_prompt else fix_version
    row = {
        "dialogue_id": dialogue_id(METHOD, p["dialogue_id"], config_fp), "problem_id": p["problem_id"],
        **provenance(p), "method": METHOD, "parent_id": p["problem_id"],
        "teacher_model": ctx.teacher.model, "programmer_model": ctx.programmer.model, "prompt_version": versions,
        "config_fingerprint": config_fp, "feedback_mode": "execution",
        # The user turn; a parent rejected before it had one keeps the parent's statement, for reading the reject.
        "instruction": c.messages[0]["content"] if c.messages else p.get("instruction"),
        "solution": c.code, "tests": p["tests"], "tests_source": p.get("tests_source"), "messages": c.messages,
        "turns": c.turns, "passed_turn": c.passed_turn, "verdicts": c.verdicts,
        "prompt_tokens": c.prompt_tokens, "completion_tokens": c.completion_tokens, "mutation": c.detail,
    }
    if c.passed_turn is not None:
        row["task_messages"] = c.messages[:1]
    return row


def _config_fingerprint(config: CodeCorrectionConfig, ctx: MethodContext, versions: str) -> str:
    teacher, programmer = ctx.teacher.model, ctx.programmer.model
    # The two request sentences are stored in the dialogues but live here, not in a prompt file: they are hashed in.
    return record_config(fingerprint(config, teacher, programmer, versions, MUTATIONS_VERSION, METHOD, FIX_REQUEST,
                                     RETRY_REQUEST), ctx.home,
                         stage=METHOD_DIALOGUES, method=METHOD, config=config, teacher_model=teacher,
                         programmer_model=programmer, prompt_versions=versions, mutations_version=MUTATIONS_VERSION,
                         requests=[FIX_REQUEST, RETRY_REQUEST])


def run(inputs: MethodInputs, config: CodeCorrectionConfig, ctx: MethodContext) -> MethodResult:
    """Code-correction dialogues for the verified parent dialogues of `inputs`, through the phases of the module
    docstring."""
    check_config(config)
    fix_prompt = load_prompt("code_correction", config.prompt_version)
    bug_prompt = load_prompt("bug_writer", config.bug_prompt_version) if config.bug_source != "mutation" else None
    versions = fix_prompt.version + (f"+{bug_prompt.version}" if bug_prompt else "")
    config_fp = _config_fingerprint(config, ctx, versions)
    parents = {p["dialogue_id"]: p for p in inputs.dialogues}  # a parent listed twice is corrected once
    work = [_Correction(p, find_entry_point(p.get("solution") or "", p.get("tests") or ""))
            for p in parents.values()]
    ran = _mutation_bugs(work, config, ctx) if config.bug_source != "teacher" else 0
    if bug_prompt is not None:
        _teacher_bugs([c for c in work if c.bug is None], config, ctx, bug_prompt)
    for c in work:
        if c.bug is None and c.reason is None:
            c.reason = "no_caught_mutation"
    ctx.info(f"code_correction: {sum(c.bug is not None for c in work)}/{len(work)} parents have a caught bug "
             f"({ran} mutants run)")
    _fix(work, config, ctx, fix_prompt)
    rows = [_row(c, ctx, fix_prompt.version, config_fp) for c in work if c.passed_turn is not None]
    rejects = [{**_row(c, ctx, fix_prompt.version, config_fp), "reason": c.reason} for c in work
               if c.passed_turn is None]
    kinds = Counter(c.bug.kind for c in work if c.passed_turn is not None)
    return MethodResult(rows, rejects, Counter(r["reason"] for r in rejects),
                        sum(c.prompt_tokens for c in work), sum(c.completion_tokens for c in work),
                        extra={"mutation_kinds": dict(kinds), "mutants_run": ran,
                               "bugs_caught": sum(c.bug is not None for c in work)})
