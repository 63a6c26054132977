"""Magicoder's OSS-Instruct: random 1-15-line windows of real source files become a problem and a solution.

    result = run(MethodInputs(seeds=rows), OssInstructConfig(), ctx)

oss_instruct runs in named phases over all windows at once, each teacher phase one `ask_round` (cached, and seen
concurrently by a remote teacher):

1. `draw_windows`: random runs of 1..max_window_lines lines of the seeds' source files, each file read once (seed rows
   of kind "window" are used as they are). The draw is seeded by the file's content and `config.seed`, so a rerun
   draws the same windows; blank, comment-only and too-short windows are skipped and counted;
2. `_ask_problems` (oss_window prompt): the teacher turns each window into "### Problem" + "### Solution";
3. `_ask_tests` (oss_tests prompt): a FRESH conversation holding the problem and the solution asks for "### Tests".
   The tests writer is not the conversation that wrote the solution, and a small teacher gets a short context with a
   demonstration of exactly this step. The same conversation later takes the repairs; tests that break a rule the
   gates need (too few asserts, none that call the function) get one turn told what is wrong (format_repair prompt);
4. `_run_and_repair`: solution + tests in the sandbox; a failing run's execution output goes back (problem_repair
   prompt) and the solution and tests the reply holds replace the old ones (the problem statement stays: see
   test_writing.py), up to `repair_turns` times;
5. `_gate`: the questioner's test-quality gates (the tests fail on the trivial mutant; a salted rerun passes);
6. `_rows`: Magicoder's single-turn shape, [user: problem, assistant: solution]; the first of two windows that led
   to the same problem wins.

`config.language` picks the language of everything written (code_languages.py): its prompts are
oss_window_<language> and oss_tests_<language> (Python keeps oss_window and oss_tests), its tests are a program that
exits non-zero at the first failing check, and only seeds of that language give windows, as Magicoder draws each
language's problems from that language's code.

Reject rows hold the teacher exchange so far (the prompts' fixed parts left out) as `messages`.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from assets.fingerprints import fingerprint, record_config
from assets.generate.code_languages import CodeLanguage, code_language
from assets.generate.config import PYTHON, QUESTIONER_TESTS
from assets.generate.methods.base import MethodContext, MethodInputs, MethodResult, answer_text, dialogue_id, provenance
from assets.generate.methods.config import OssInstructConfig
from assets.generate.questioner import QUESTIONER_STOP, problem_id
from assets.generate.replies import Rejected, sections
from assets.generate.seed_extract import ExtractConfig, check_snippet, extract_windows, seed_id
from assets.generate.seed_sources import SourceError, SourceSpec, require_source
from assets.generate.test_writing import TestedItem, TestWriting
from assets.keys import METHOD_DIALOGUES
from assets.partitions import source_of
from assets.prompts import load_prompt

METHOD = "oss_instruct"
# Turn 1 asks for two sections: a third one ("### Tests") is asked for separately, so generation stops there.
PROBLEM_STOP = ["\n### Tests", *QUESTIONER_STOP]


# -- 1. windows ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Window:
    seed_id: str
    source: str
    path: str
    license: str | None
    code: str
    language: str = PYTHON

    @property
    def lines(self) -> int:
        return self.code.count("\n") + 1


def window_config(config: OssInstructConfig) -> ExtractConfig:
    return ExtractConfig(mode="window", windows_per_file=config.windows_per_file,
                         window_max_lines=config.max_window_lines, max_lines=config.max_window_lines,
                         seed=config.seed or 0)


COMMENT_STARTS = ("#", "//", "/*", "*")
PREPROCESSOR = ("#include", "#define", "#if", "#pragma")


def _is_code_line(line: str) -> bool:
    line = line.strip()
    return bool(line) and (not line.startswith(COMMENT_STARTS) or line.startswith(PREPROCESSOR))


def check_window(code: str, extract: ExtractConfig) -> tuple[bool, str]:
    """(keep, reason): a window needs a line of code (not only comments) and seed_extract's minimum of characters."""
    if not any(_is_code_line(line) for line in code.splitlines()):
        return False, "comment_only"
    return check_snippet(code, "window", extract)


def read_source_file(spec: SourceSpec | None, path: str) -> str | None:
    """The text of a local source's file; None for an hf source or a file that is gone or not UTF-8."""
    if spec is None or spec.kind != "local":
        return None
    root = Path(spec.path).expanduser().resolve()
    file = (root / path).resolve()
    if not file.is_relative_to(root):
        return None
    try:
        return file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


@dataclass
class WindowDraw:
    windows: list[Window]  # in seed order, each distinct window once
    skipped: Counter  # windows left out, by reason (comment_only, too_short, duplicate_window)
    seeds_without_file: int = 0  # seeds whose file could not be read: their own code was the text drawn from
    seeds_of_other_languages: int = 0  # seeds not in config.language: not drawn from


def draw_windows(seeds: list[dict], config: OssInstructConfig, spec: SourceSpec | None) -> WindowDraw:
    """The windows of the seeds' files (each file read once through `spec`), or of the seeds' own code when the
    file cannot be read (an hf source); seed rows of kind "window" as they are. Only seeds in `config.language`."""
    extract = window_config(config)
    draw = WindowDraw([], Counter())
    wanted = [s for s in seeds if (s.get("language") or PYTHON) == config.language]
    draw.seeds_of_other_languages = len(seeds) - len(wanted)
    taken: set[str] = set()
    files_read: set[str] = set()

    def add(seed: dict, code: str, wid: str) -> None:
        keep, reason = check_window(code, extract)
        if keep and wid in taken:
            keep, reason = False, "duplicate_window"
        if not keep:
            draw.skipped[reason] += 1
            return
        taken.add(wid)
        draw.windows.append(Window(wid, seed["source"], seed["path"], seed.get("license"), code, config.language))

    for seed in wanted:
        if seed.get("kind") == "window":
            add(seed, seed["code"], seed["seed_id"])
            continue
        if seed["path"] in files_read:
            continue
        text = read_source_file(spec, seed["path"])
        if text is None:
            draw.seeds_without_file += 1
            text = seed["code"]
        else:
            files_read.add(seed["path"])
        for _, code in extract_windows(text, seed["path"], extract):
            add(seed, code, seed_id(code))
    return draw


def source_spec(ctx: MethodContext) -> SourceSpec | None:
    """The partition's seed source, or None when it cannot be resolved (windows then come from the seeds' code)."""
    try:
        return require_source(source_of(ctx.source), home=ctx.home)
    except SourceError as err:
        ctx.info(f"{METHOD}: {err}; drawing windows from the seeds' own code")
        return None


# -- parsing replies -------------------------------------------------------------------------------------------------
def parse_problem_and_solution(text: str, language: CodeLanguage | None = None) -> tuple[str, str] | Rejected:
    """(problem statement, solution) of a turn-1 reply, the solution in `language` (Python by default)."""
    language = language or code_language(PYTHON)
    if not text or not text.strip():
        return Rejected("empty_reply")
    found = sections(text)
    problem = (found.get("problem") or "").strip()
    if not problem:
        return Rejected("no_problem_section")
    solution = language.first_block(found.get("solution"))
    if solution is None:
        return Rejected("no_solution_code")
    if not language.parses(solution):
        return Rejected("solution_syntax_error")
    if language.mutant(solution) is None:  # tests could not tell it from a wrong one (the gate needs a function)
        return Rejected("no_function_in_solution")
    return problem, solution


# -- 2-6. the phases -------------------------------------------------------------------------------------------------
@dataclass(kw_only=True)
class _Item(TestedItem):
    window: Window

    @property
    def key(self) -> str:
        return self.window.seed_id


class _OssInstruct(TestWriting):
    """One run over a list of windows: prompts, fingerprint, and the rejects so far."""

    def __init__(self, config: OssInstructConfig, ctx: MethodContext) -> None:
        self.config, self.ctx, self.client, self.runner = config, ctx, ctx.teacher, ctx.runner
        self.language = code_language(config.language)
        suffix = "" if self.language.is_python else f"_{self.language.name}"
        self.window_prompt = load_prompt(f"oss_window{suffix}", config.prompt_version)
        self.tests_prompt = load_prompt(f"oss_tests{suffix}", config.prompt_version)
        self.repair_prompt = load_prompt("problem_repair", config.repair_prompt_version)
        # format_repair names Python's asserts; the other languages' turn names no construct.
        self.format_prompt = load_prompt("format_repair" if self.language.is_python else "format_repair_code",
                                         config.repair_prompt_version)
        self.versions = "+".join(p.version for p in (self.window_prompt, self.tests_prompt, self.repair_prompt,
                                                     self.format_prompt))
        self.config_fp = record_config(fingerprint(config, self.client.model, self.versions, METHOD), ctx.home,
                                       stage=METHOD_DIALOGUES, method=METHOD, config=config,
                                       teacher_model=self.client.model, prompt_versions=self.versions)
        self.rejects: list[dict] = []
        self.counts: Counter = Counter()
        self.items: list[_Item] = []

    def reject(self, item: _Item, reason: str, detail: str = "") -> None:
        self.counts[reason] += 1
        self.rejects.append({**self.row(item, passed=False), "reason": reason, "detail": detail})

    def _ask_problems(self, items: list[_Item]) -> list[_Item]:
        kept = []
        for item, reply in self.ask(items, lambda i: self.window_prompt.render(window=i.window.code), PROBLEM_STOP):
            parsed = parse_problem_and_solution(reply, self.language)
            if isinstance(parsed, Rejected):
                self.reject(item, parsed.reason, parsed.detail)
                continue
            item.instruction, item.solution = parsed
            kept.append(item)
        return kept

    def _rows(self, items: list[_Item]) -> list[dict]:
        rows: dict[str, dict] = {}
        for item in items:
            row = self.row(item, passed=True)
            if row["problem_id"] in rows:
                self.reject(item, "duplicate_problem", rows[row["problem_id"]]["seed_id"])
            else:
                rows[row["problem_id"]] = row
        return list(rows.values())

    def row(self, item: _Item, passed: bool) -> dict:
        """The schemas.DIALOGUES row of an item; for a reject, as far as it got, with the teacher exchange."""
        pid = problem_id(item.instruction, item.tests) if item.instruction and item.tests else None
        user = {"role": "user", "content": item.instruction or ""}
        return {
            "dialogue_id": dialogue_id(METHOD, pid, self.config_fp) if pid else None,
            "problem_id": pid, **provenance(dataclasses.asdict(item.window)),
            "method": METHOD, "parent_id": None, "teacher_model": self.client.model,
            "programmer_model": self.client.model, "prompt_version": self.versions,
            "config_fingerprint": self.config_fp, "feedback_mode": None,
            "instruction": item.instruction, "solution": item.solution, "tests": item.tests,
            "tests_source": QUESTIONER_TESTS if item.tests else None,
            "messages": [user, {"role": "assistant", "content": answer_text(item.solution, fence=self.language.fence)}]
            if passed
            else item.exchange,
            "task_messages": [user],
            "turns": 1 if item.solution else 0, "passed_turn": 1 if passed else None, "verdicts": item.verdicts,
            "prompt_tokens": item.prompt_tokens, "completion_tokens": item.completion_tokens,
        }

    def run(self, windows: list[Window]) -> list[dict]:
        self.items = items = [_Item(window=w) for w in windows]
        asked = self._ask_problems(items)
        tested = self._ask_tests(asked)
        passing = self._run_and_repair(tested)
        kept = self._gate(passing)
        rows = self._rows(kept)
        self.ctx.info(f"{METHOD}: {len(items)} windows, {len(asked)} problems, {len(tested)} with tests, "
                      f"{len(passing)} passing, {len(kept)} through the gates, {len(rows)} rows")
        return rows


def run(inputs: MethodInputs, config: OssInstructConfig, ctx: MethodContext) -> MethodResult:
    """OSS-Instruct dialogues from random windows of the seeds' source files, verified in the sandbox."""
    draw = draw_windows(inputs.seeds, config, source_spec(ctx))
    generation = _OssInstruct(config, ctx)
    rows = generation.run(draw.windows)
    items = generation.items
    kept = {row["seed_id"] for row in rows}
    return MethodResult(rows, generation.rejects, generation.counts, sum(i.prompt_tokens for i in items),
                        sum(i.completion_tokens for i in items),
                        {"windows": len(draw.windows),
                         "window_lines": dict(sorted(Counter(w.lines for w in draw.windows).items())),
                         "windows_skipped": dict(draw.skipped), "seeds_without_file": draw.seeds_without_file,
                         "seeds_of_other_languages": draw.seeds_of_other_languages, "language": config.language,
                         "kept_after_repair": sum(1 for i in items if i.key in kept and i.runs > 1)})
