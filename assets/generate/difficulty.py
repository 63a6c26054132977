"""Difficulty labels by the empirical pass rate of sampled answers (after KodCode): each kept row's task is answered
`samples` more times by the programmer at a sampling temperature, each answer runs against the row's tests in the
sandbox, and the share that passes labels the row:

    easy    >= 3/4 of the samples pass (with 3 samples: all three)
    medium  >= 1/4 (with 3 samples: one or two)
    hard    fewer (none of three)

The samples are cached like every other request (each has its own sampling seed), so relabelling is free. A row in
another language than Python is answered in its language (programmer_code prompt) and run as that language's program
(code_languages.py).
"""

from __future__ import annotations

from assets.generate.code_languages import CodeLanguage, code_language
from assets.generate.config import PYTHON
from assets.generate.replies import extract_code, find_entry_point
from assets.generate.teacher_rounds import ask_round, sampling
from assets.prompts import load_prompt
from resources.llm import ChatRequest, TeacherClient, TeacherError
from resources.verdict_cache import CachedRunner

EASY, MEDIUM = 0.75, 0.25
SAMPLE_TEMPERATURE = 0.8
LABELS = ("easy", "medium", "hard")


def label(pass_rate: float) -> str:
    return "easy" if pass_rate >= EASY else "medium" if pass_rate >= MEDIUM else "hard"


def label_difficulty(rows: list[dict], programmer: TeacherClient, runner: CachedRunner, samples: int,
                     seed: int | None = 0, max_tokens: int = 1024, prompt_version: int = 1) -> dict[str, int]:
    """Set `difficulty` and `sample_pass_rate` on every row that has `task_messages` (in place); returns the label
    counts. Rows without task messages, and every row when `samples` is 0, are left unlabelled. A sample the teacher
    failed to answer counts as not passing."""
    todo = [row for row in rows if row.get("task_messages")]
    if samples <= 0 or not todo:
        return {}
    python = load_prompt("programmer", prompt_version)
    other = load_prompt("programmer_code", prompt_version)

    def system(lang: CodeLanguage) -> tuple[list[dict], str]:
        if lang.is_python:
            return python.render(), python.version
        return other.render(language=lang.label, fence=lang.fence), other.version

    languages = {row["dialogue_id"]: code_language(row.get("language") or PYTHON) for row in todo}
    requests = []
    for row in todo:
        messages, version = system(languages[row["dialogue_id"]])
        requests += [ChatRequest(f"{row['dialogue_id']}:{k}", messages + row["task_messages"], SAMPLE_TEMPERATURE,
                                 max_tokens, f"{version}+difficulty", sampling((seed or 0) + 1 + k))
                     for k in range(samples)]
    answers = ask_round(programmer, requests)
    programs, owners = [], []
    for row in todo:
        lang = languages[row["dialogue_id"]]
        entry_point = (find_entry_point(row["solution"] or "", row["tests"] or "") if lang.is_python else
                       lang.check_tests(row["solution"] or "", row["tests"] or "", 0))
        for k in range(samples):
            answer = answers[f"{row['dialogue_id']}:{k}"]
            code = None if isinstance(answer, TeacherError) else _answer_code(answer.content, entry_point, lang)
            if code:
                programs.append({"id": f"{row['dialogue_id']}:{k}", "code": lang.program(code, row["tests"]),
                                 "language": lang.name})
                owners.append(row["dialogue_id"])
    passed: dict[str, int] = {}
    for owner, verdict in zip(owners, runner.run(programs)):
        passed[owner] = passed.get(owner, 0) + int(verdict.passed)
    counts = dict.fromkeys(LABELS, 0)
    for row in todo:
        rate = passed.get(row["dialogue_id"], 0) / samples
        row["sample_pass_rate"] = round(rate, 4)
        row["difficulty"] = label(rate)
        counts[row["difficulty"]] += 1
    return counts


def _answer_code(text: str, entry_point, lang: CodeLanguage) -> str | None:
    """The answer's code: Python's extract_code; in another language the last block defining the entry point, else
    the longest block."""
    if lang.is_python:
        return extract_code(text, entry_point)
    blocks = [b for b in lang.blocks(text) if lang.parses(b)]
    defining = [b for b in blocks if isinstance(entry_point, str) and entry_point in lang.functions(b)]
    return defining[-1] if defining else max(blocks, key=len, default=None)
