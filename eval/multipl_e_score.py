"""Score a sample file on MultiPL-E in the sandbox: pass@k overall, per language and per benchmark.

    with sandbox_runner("bwrap") as runner:                                        # eval.scoring
        report = score_file("multipl-e-humaneval-cpp", Path("samples.jsonl"), runner)           # rows from the Hub
        report = score_file("multipl-e", Path("samples.jsonl"), runner, Path("rows.jsonl"))     # or from a file

Samples are Crucible's sample files (eval/samples.py) with MultiPL-E task ids, `LANG/name`. A "completion" continues
the prompt and is cut at the item's first stop token, as MultiPL-E scores it; a "solution" is the program before the
tests (prompt + completion: what a scored row's "solution" holds), run as given. Each program runs in the sandbox in
its item's language through the cached runner, and passes when it exits 0 (Python's also needs eval.checked's marker).

Samples in a language the sandbox cannot run here (unknown to it, or its toolchain is not installed) are not run: the
report counts them under "unsupported" with the reason, and they are left out of every pass@k.
"""

from __future__ import annotations

import time
from pathlib import Path

from eval.checked import checked_program, confirm
from eval.multipl_e import HUB_DATASET, MultiPLEItem, load_multipl_e
from eval.pass_at_k import DEFAULT_KS
from eval.samples import Sample, read_samples, write_samples
from eval.scoring import SandboxRunner, ScoredSample, human_eval_result, manifest, summarize
from resources.files import sha256_file
from resources.sandbox import Verdict
from sandbox_image.languages import LANGUAGES, PYTHON, language_problem

UNSUPPORTED = "unsupported"
# What each group's entry keeps of eval.scoring.summarize: the scores and the counts, not the per-task table.
GROUP_KEYS = ("ci95", "tasks_scored", "tasks_in_benchmark", "n_samples", "statuses")


def unsupported_reason(language: str, backend: str) -> str | None:
    """Why the sandbox cannot run `language` here, or None. The docker image carries every toolchain the sandbox
    knows; the other backends use this machine's."""
    problem = language_problem(language)
    if problem or backend == "docker":
        return problem
    return LANGUAGES[language].missing()


def program_of(sample: Sample, item: MultiPLEItem) -> tuple[str, str, str]:
    """(solution, completion, how): the program before the tests, what follows the prompt in it, and how it was
    made: "truncated" (cut at a stop token), "completion" (no stop token in it) or "solution" (given whole)."""
    if sample.kind == "solution":
        text = sample.text
        return text, text[len(item.prompt):] if text.startswith(item.prompt) else text, "solution"
    completion = item.truncate(sample.text)
    return item.prompt + completion, completion, "truncated" if completion != sample.text else "completion"


def _run(rows: list[tuple[str, str, MultiPLEItem]], runner: SandboxRunner):
    """rows: (id, solution, item). One sandbox batch; Python programs carry eval.checked's marker."""
    programs, markers = [], []
    for row_id, solution, item in rows:
        if item.language == PYTHON:
            code, marker = checked_program(solution, item.test)
        else:
            code, marker = item.check_program(solution), None
        programs.append({"id": row_id, "code": code, "language": item.language})
        markers.append(marker)
    verdicts = runner.run(programs)
    return [confirm(v, marker) if marker else v for v, marker in zip(verdicts, markers)]


def result_of(verdict: Verdict) -> str:
    """human-eval's wording of the verdict; a failure with nothing on stderr (Go's test runner and Bash's `[[ ]]`
    report on stdout or not at all) is worded from stdout's last line, else the exit status."""
    if verdict.status != "failed" or verdict.stderr.strip():
        return human_eval_result(verdict)
    said = [line.strip() for line in verdict.stdout.splitlines() if line.strip() and line.strip() != "FAIL"]
    return f"failed: {said[-1][:300]}" if said else f"failed: exit status {verdict.exit_code}"


def score_samples(samples: list[Sample], items: dict[str, MultiPLEItem], runner: SandboxRunner) -> list[ScoredSample]:
    """Every sample scored, in input order; those of a language the sandbox cannot run get status "unsupported"."""
    reasons = {lang: unsupported_reason(lang, runner.backend) for lang in {items[s.task_id].language for s in samples}}
    built = [(sample, items[sample.task_id], *program_of(sample, items[sample.task_id])) for sample in samples]
    runnable = [row for row in built if not reasons[row[1].language]]
    verdicts = iter(_run([(f"{s.task_id}#{s.index}", solution, item) for s, item, solution, _, _ in runnable], runner))
    scored = []
    for sample, item, solution, completion, how in built:
        reason = reasons[item.language]
        if reason:
            scored.append(ScoredSample(sample.task_id, sample.index, how, solution, completion, UNSUPPORTED,
                                       f"{UNSUPPORTED}: {reason}", 0.0))
        else:
            v = next(verdicts)
            scored.append(ScoredSample(sample.task_id, sample.index, how, solution, completion, v.status,
                                       result_of(v), v.wall_ms))
    return scored


def _group(scored: list[ScoredSample], items: dict[str, MultiPLEItem], ks, seed: int) -> dict:
    report = summarize(scored, items, ks, seed)
    return {key: value for key, value in report.items() if key.startswith("pass@") or key in GROUP_KEYS}


def _by(items: dict[str, MultiPLEItem], field: str) -> dict[str, dict[str, MultiPLEItem]]:
    groups: dict[str, dict[str, MultiPLEItem]] = {}
    for task_id, item in items.items():
        groups.setdefault(getattr(item, field), {})[task_id] = item
    return groups


def summarize_multipl_e(scored: list[ScoredSample], items: dict[str, MultiPLEItem], ks=DEFAULT_KS,
                        seed: int = 0) -> dict:
    """pass@k over every task of the languages that ran (eval.scoring.summarize), then the same per language and per
    benchmark (each with its own languages), and the samples left unsupported, by language."""
    ran = [s for s in scored if s.status != UNSUPPORTED]
    skipped: dict[str, list[ScoredSample]] = {}
    for s in scored:
        if s.status == UNSUPPORTED:
            skipped.setdefault(items[s.task_id].language, []).append(s)
    runnable = {task_id: item for task_id, item in items.items() if item.language not in skipped}
    report = summarize(ran, runnable, ks, seed)

    def groups(chosen: dict[str, MultiPLEItem], field: str) -> dict:
        out = {}
        for name, members in sorted(_by(chosen, field).items()):
            mine = [s for s in ran if s.task_id in members]
            if mine:
                out[name] = {**_group(mine, members, ks, seed),
                             **({"per_language": groups(members, "language")} if field == "benchmark" else {})}
        return out

    report["per_language"] = groups(runnable, "language")
    report["per_benchmark"] = groups(runnable, "benchmark")
    if skipped:
        report["unsupported"] = {language: {"samples": len(rows), "tasks": len({s.task_id for s in rows}),
                                            "reason": rows[0].result.removeprefix(f"{UNSUPPORTED}: ")}
                                 for language, rows in sorted(skipped.items())}
    return report


def score_file(benchmark: str, samples_path: Path, runner: SandboxRunner, benchmark_file: Path | None = None,
               output: Path | None = None, output_format: str = "evalplus", ks=DEFAULT_KS, seed: int = 0) -> dict:
    """`crucible eval score --benchmark multipl-e...`: one JSON-ready report, pass@1 first."""
    started = time.time()
    items = load_multipl_e(benchmark, benchmark_file)
    if not items:
        raise ValueError(f"benchmark {benchmark} could not be loaded from the Hub ({HUB_DATASET}: offline or "
                         "unreachable); give its rows as a local file with --benchmark-file")
    samples = read_samples(samples_path, items, benchmark)
    scored = score_samples(samples, items, runner)
    report = summarize_multipl_e(scored, items, ks, seed)
    if output is not None:
        write_samples(output, scored, output_format)
    extra = {"samples_file": str(samples_path), "samples_sha256": sha256_file(samples_path),
             "languages": sorted({items[s.task_id].language for s in scored})}
    if benchmark_file is not None:
        extra.update(benchmark_file=str(benchmark_file), benchmark_file_sha256=sha256_file(benchmark_file))
    report["manifest"] = manifest(benchmark, runner, [s for s in scored if s.status != UNSUPPORTED], seed, started,
                                  **extra)
    first = ("benchmark", "pass@1")
    ordered = {"benchmark": benchmark, **report}
    return {**{k: ordered[k] for k in first if k in ordered}, **ordered}
