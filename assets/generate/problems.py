"""oss_instruct_problems: the teacher, as questioner, turns each seed into a problem, a reference solution and tests.

Round by round for all seeds at once: ask; parse; run reference + tests in the sandbox; send the execution output of
failing references back to the questioner for a repair (AIEV-Instruct), up to `max_turns`. Survivors then pass the
test-quality gates in the sandbox: enough asserts, the tests fail on a `return None` mutant, and a rerun gives the
same verdict. Every answer and verdict is cached, so re-materializing repeats nothing.
"""


import hashlib
import time
from collections import Counter
from dataclasses import dataclass, field

import dagster as dg

from assets.checks import (
    markdown_preview,
    not_empty_result,
    not_empty_spec,
    reason_metadata,
    stage_outs,
)
from assets.fingerprints import fingerprint, record_config
from assets.generate.config import ProblemsConfig
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
from assets.keys import OSS_INSTRUCT_PROBLEMS, PROBLEM_REJECTS_TABLE, SEED_SNIPPETS
from assets.partitions import seed_source_partitions
from assets.prompts import load_prompt
from assets.schemas import PROBLEM_REJECTS, PROBLEMS, frame
from resources.llm import ChatRequest, TeacherClient, TeacherError, TeacherLLM
from resources.sandbox import Sandbox
from resources.verdict_cache import CachedRunner

GATES_CHECK = "references_pass_gates"
QUESTIONER_TESTS, REFERENCE_OUTPUTS = "questioner", "reference_outputs"
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


def problem_id(instruction: str, tests: str) -> str:
    return hashlib.sha256(f"{' '.join(instruction.split())}\n{tests.strip()}".encode()).hexdigest()[:16]


@dataclass
class _Work:
    seed: dict
    messages: list[dict]  # the whole request: system and worked example included
    prefix: int  # messages[:prefix] is the template's fixed part; the rest is this seed's exchange
    parsed: ParsedProblem | None = None
    tests_source: str = QUESTIONER_TESTS
    reply: str = ""
    verdicts: list[dict] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass
class ProblemsResult:
    problems: list[dict]
    rejects: list[dict]
    counts: Counter
    repairs_used: Counter  # repair turns -> problems kept
    prompt_tokens: int
    completion_tokens: int
    sandbox_runs: int


def generate_problems(seeds: list[dict], client: TeacherClient, runner: CachedRunner, config: ProblemsConfig,
                      log=None) -> ProblemsResult:
    prompt = load_prompt("oss_instruct", config.prompt_version)
    repair = load_prompt("problem_repair", config.repair_prompt_version)
    format_repair = load_prompt("format_repair", config.repair_prompt_version)
    versions = f"{prompt.version}+{repair.version}+{format_repair.version}"
    config_fp = record_config(fingerprint(config, client.model, versions), stage=OSS_INSTRUCT_PROBLEMS,
                              config=config, teacher_model=client.model, prompt_versions=versions)
    counts: Counter = Counter()
    rejects: list[dict] = []
    kept: list[tuple[_Work, int]] = []

    def reject(work: _Work, reason: str, detail: str = "") -> None:
        counts[reason] += 1
        rejects.append({"problem_id": None, "seed_id": work.seed["seed_id"], "source": work.seed["source"],
                        "reason": reason, "detail": detail, "reply": work.reply,
                        "messages": work.messages[work.prefix:], "verdicts": work.verdicts})

    active: dict[str, _Work] = {}
    for seed in seeds:
        messages = prompt.render(seed=seed["code"].rstrip())
        active[seed["seed_id"]] = _Work(seed, messages, prefix=len(messages) - 1)
    everything = list(active.values())
    passed: list[tuple[_Work, int]] = []
    exhausted: list[_Work] = []  # references still failing when the repairs ran out
    for turn in range(1, config.max_turns + 1):
        if not active:
            break
        requests = [ChatRequest(sid, w.messages, config.temperature, config.max_tokens, versions,
                                sampling(config.seed, stop=QUESTIONER_STOP)) for sid, w in active.items()]
        answers = ask_round(client, requests)
        to_run: list[_Work] = []
        next_active: dict[str, _Work] = {}
        for sid, work in list(active.items()):
            answer = answers[sid]
            if isinstance(answer, TeacherError):
                reject(work, "teacher_error", str(answer)[:300])
                continue
            p_tok, c_tok = tokens(answer)
            work.prompt_tokens += p_tok
            work.completion_tokens += c_tok
            work.reply = answer.content
            work.messages = work.messages + [{"role": "assistant", "content": answer.content}]
            parsed = parse_problem_reply(answer.content, config.min_asserts)
            if isinstance(parsed, Rejected):
                if parsed.reason in REPAIRABLE and turn < config.max_turns:
                    work.messages = work.messages + format_repair.render(problem=REPAIRABLE[parsed.reason])
                    next_active[sid] = work
                else:
                    reject(work, parsed.reason, parsed.detail)
                continue
            work.parsed = parsed
            to_run.append(work)
        verdicts = runner.run([{"id": w.seed["seed_id"],
                                "code": program_with_tests(w.parsed.solution, w.parsed.tests)} for w in to_run])
        for work, verdict in zip(to_run, verdicts):
            work.verdicts.append(verdict_row(verdict, turn))
            if verdict.passed:
                passed.append((work, turn - 1))
            elif turn < config.max_turns:
                work.messages = work.messages + repair.render(execution=execution_feedback(verdict))
                next_active[work.seed["seed_id"]] = work
            else:
                exhausted.append(work)
        if log:
            log.info(f"questioner turn {turn}: {len(requests)} asked, {len(to_run)} parsed, "
                     f"{sum(v.passed for v in verdicts)} references passed, {len(next_active)} sent back for "
                     f"repair, {sum(counts.values())} rejected so far")
        active = next_active

    rescued = adopt_reference_outputs(exhausted, runner) if config.reference_outputs and exhausted else []
    passed += [(work, config.max_turns - 1) for work in rescued]
    for work in exhausted:
        if work not in rescued:
            reject(work, "reference_fails_tests", work.verdicts[-1]["status"])

    # Test-quality gates, in the sandbox: the tests must fail on a trivially wrong solution, and a rerun of the
    # reference must give the same verdict.
    gated: list[tuple[_Work, int]] = []
    gate_programs = []
    for work, repairs in passed:
        mutant = trivial_mutant(work.parsed.solution)
        if mutant is None:  # no function body to replace: nothing shows the tests can tell right from wrong
            reject(work, "tests_pass_trivial_solution", "no function to mutate")
            continue
        sid = work.seed["seed_id"]
        gated.append((work, repairs))
        gate_programs += [
            {"id": f"{sid}:rerun", "code": program_with_tests(work.parsed.solution, work.parsed.tests),
             "salt": "rerun"},
            {"id": f"{sid}:mutant", "code": program_with_tests(mutant, work.parsed.tests)},
        ]
    gate_verdicts = runner.run(gate_programs)
    for index, (work, repairs) in enumerate(gated):
        rerun, mutant = gate_verdicts[2 * index], gate_verdicts[2 * index + 1]
        work.verdicts.append(verdict_row(rerun, 0))  # turn 0: gate runs, not dialogue turns
        if not rerun.passed:
            reject(work, "flaky_tests", rerun.status)
        elif mutant.passed:
            reject(work, "tests_pass_trivial_solution")
        else:
            kept.append((work, repairs))

    rows = []
    for work, repairs in kept:
        p = work.parsed
        rows.append({
            "problem_id": problem_id(p.instruction, p.tests), **{k: work.seed[k] for k in
                                                                 ("seed_id", "source", "path", "license")},
            "teacher_model": client.model, "prompt_version": versions, "config_fingerprint": config_fp,
            "instruction": p.instruction, "entry_point": p.entry_point, "solution": p.solution, "tests": p.tests,
            "n_asserts": p.n_asserts, "tests_source": work.tests_source, "repair_turns": repairs,
            "messages": work.messages[work.prefix:],
            "verdicts": work.verdicts,
        })
    # Two seeds can lead to the same problem; keep the first.
    unique = {}
    for row, (work, _) in zip(rows, kept):
        if row["problem_id"] in unique:
            reject(work, "duplicate_problem", unique[row["problem_id"]]["seed_id"])
        else:
            unique[row["problem_id"]] = row
    return ProblemsResult(list(unique.values()), rejects, counts, Counter(r for _, r in kept),
                          sum(w.prompt_tokens for w in everything), sum(w.completion_tokens for w in everything),
                          runner.executed)


def adopt_reference_outputs(works: list[_Work], runner: CachedRunner) -> list[_Work]:
    """Second chance for references that still fail their tests after every repair: when the tests' equality
    asserts only disagree on expected values, take the values the reference computes. Small teachers miscompute
    expected values far more often than they write wrong code; the problem is then kept only if the programmer's
    independent first answer reproduces the same outputs (verified_dialogues), which is the agreement check."""
    candidates = [(w, outputs_program(w.parsed.solution, w.parsed.tests)) for w in works]
    candidates = [(w, program) for w, program in candidates if program]
    verdicts = runner.run([{"id": w.seed["seed_id"], "code": program} for w, program in candidates])
    rescued = []
    for (work, _), verdict in zip(candidates, verdicts):
        tests = expected_from_outputs(work.parsed.tests, verdict.stdout) if verdict.passed else None
        if tests is None or tests == work.parsed.tests:
            continue
        work.parsed.tests = tests
        work.tests_source = REFERENCE_OUTPUTS
        rescued.append(work)
    return rescued


@dg.multi_asset(
    outs=stage_outs("generate", {
        OSS_INSTRUCT_PROBLEMS: "Self-contained problems with a reference solution and assert-based tests that pass the "
                               "sandbox quality gates.",
        PROBLEM_REJECTS_TABLE: "Seeds whose problem was rejected, with the reason and the teacher's last reply.",
    }),
    ins={"seeds": dg.AssetIn(SEED_SNIPPETS)},
    partitions_def=seed_source_partitions,
    check_specs=[
        dg.AssetCheckSpec(GATES_CHECK, asset=OSS_INSTRUCT_PROBLEMS,
                          description="Every kept problem's reference passed its tests and the rerun gate."),
        not_empty_spec(OSS_INSTRUCT_PROBLEMS, "At least one problem was kept."),
    ],
)
def oss_instruct_problems(context: dg.AssetExecutionContext, config: ProblemsConfig, seeds, teacher: TeacherLLM,
                          sandbox: Sandbox):
    """OSS-Instruct problems of one seed source, verified in the sandbox (repairs kept as AIEV-Instruct data)."""
    started = time.monotonic()
    rows = seeds.to_dicts()
    if config.max_problems is not None:
        rows = rows[: config.max_problems]
    runner = CachedRunner(sandbox.pool())
    result = generate_problems(rows, teacher.client(), runner, config, context.log)
    problems = frame(result.problems, PROBLEMS)
    rejects = frame(result.rejects, PROBLEM_REJECTS)
    yield dg.Output(problems, output_name=OSS_INSTRUCT_PROBLEMS, metadata={
        "seeds_used": len(rows), "problems": len(problems),
        "kept_fraction": round(len(problems) / len(rows), 3) if rows else 0.0,
        "repair_turns": dg.MetadataValue.json({str(k): v for k, v in sorted(result.repairs_used.items())}),
        "prompt_tokens": result.prompt_tokens, "completion_tokens": result.completion_tokens,
        "sandbox_runs": result.sandbox_runs, "sandbox_cached": runner.cached,
        "seconds": round(time.monotonic() - started, 1), **reason_metadata(result.counts),
        "preview": markdown_preview(problems, ["problem_id", "entry_point", "instruction"]),
    })
    yield dg.Output(rejects, output_name=PROBLEM_REJECTS_TABLE, metadata=reason_metadata(result.counts))
    gates_ok = all(v and v[-1]["status"] == "passed" for v in problems["verdicts"].to_list())
    yield dg.AssetCheckResult(check_name=GATES_CHECK, asset_key=OSS_INSTRUCT_PROBLEMS, passed=gates_ok,
                              severity=dg.AssetCheckSeverity.ERROR)
    yield not_empty_result(OSS_INSTRUCT_PROBLEMS, problems, severity=dg.AssetCheckSeverity.WARN)
