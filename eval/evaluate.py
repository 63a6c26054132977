"""The two jobs behind `crucible eval`: score a sample file, and generate-then-score a model in one mode.

    report = score_file("humaneval", Path("samples.jsonl"), runner)
    report = evaluate("humaneval", backend, runner, ModeConfig("exec_feedback"), limit=40)

Both return one JSON-ready dict: pass@1 (and pass@k where every task has k samples), ci95, per_task, tasks_scored,
statuses, and a manifest of everything the score depends on.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from eval.benchmarks import OFFLINE, load_benchmarks
from eval.modes import Conversation, ModeConfig, Prompts, run_mode
from eval.pass_at_k import DEFAULT_KS
from eval.samples import read_samples, write_samples
from eval.scoring import SandboxRunner, manifest, score_samples, score_solutions, summarize
from eval.visible_tests import canonical_checked
from resources.files import sha256_file
from resources.progress import activity, progress, say
from resources.progress import enabled as progress_shown

BENCHMARKS = ("humaneval", "mbpp", "humaneval_plus", "mbpp_plus")


class _Labelled:
    """A model as run_mode calls it, with progress: each call (one round of the mode) names its bars; a local
    checkpoint's batches advance a bar of their own (a server's replies have the teacher client's bar)."""

    def __init__(self, backend, role: str) -> None:
        self.backend, self.role, self.calls = backend, role, 0

    def generate(self, requests: list, prompt_version: str | None = None) -> list[str]:
        self.calls += 1
        size = getattr(self.backend, "batch_size", None)
        with activity(f"{self.role}, round {self.calls}"):
            if not size or not progress_shown():
                return self.backend.generate(requests, prompt_version)
            texts: list[str] = []
            with progress(len(requests), self.role, unit="answer") as bar:
                for start in range(0, len(requests), size):  # the backend's own batches: same answers, same seeds
                    texts += self.backend.generate(requests[start:start + size], prompt_version)
                    bar.advance(len(requests[start:start + size]))
            return texts


def benchmark_items(name: str) -> dict:
    """task_id -> item, in benchmark order. HumanEval and MBPP are offline; the + variants need the Hub."""
    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}: choose one of {', '.join(BENCHMARKS)}")
    items = load_benchmarks(offline=[name]) if name in OFFLINE else load_benchmarks(offline=(), online=[name])
    if not items:
        raise ValueError(f"benchmark {name} could not be loaded (it needs the Hugging Face Hub); use humaneval or "
                         "mbpp offline")
    return {item.task_id: item for item in items}


def fingerprint(generation: dict, seed: int) -> str:
    """sha256 (16 hex) of what decides the answers: model and its hash, decoding, prompts, mode, rounds, samples,
    limit and seed (the endpoint's address and the wall time are left out: they change nothing)."""
    decided = {key: ({k: v for k, v in value.items() if k != "base_url"} if key in ("model", "teacher") else value)
               for key, value in generation.items() if key != "generation_wall_s"}
    decided["seed"] = seed
    return hashlib.sha256(json.dumps(decided, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _ordered(report: dict, first: tuple[str, ...]) -> dict:
    """pass@1 and friends first, so the one-line JSON reads well; the rest in their own order."""
    return {**{k: report[k] for k in first if k in report}, **report}


def score_file(benchmark: str, samples_path: Path, runner: SandboxRunner, output: Path | None = None,
               output_format: str = "evalplus", ks=DEFAULT_KS, seed: int = 0) -> dict:
    started = time.time()
    items = benchmark_items(benchmark)
    samples = read_samples(samples_path, items, benchmark)
    scored = score_samples(samples, items, runner)
    report = summarize(scored, items, ks, seed)
    if output is not None:
        write_samples(output, scored, output_format)
    report["manifest"] = manifest(benchmark, runner, scored, seed, started, samples_file=str(samples_path),
                                  samples_sha256=sha256_file(samples_path))
    return _ordered({"benchmark": benchmark, **report}, ("benchmark", "pass@1"))


def _per_round(conversations: list[Conversation], max_rounds: int, items: dict, runner: SandboxRunner) -> list:
    """Each round's standing answers scored on the hidden tests: one sandbox batch; repeats are run once."""
    rows = [(c.item.task_id, c.index, c.answer_at(r).solution, c.answer_at(r).how)
            for r in range(max_rounds + 1) for c in conversations]
    scored = score_solutions(rows, items, runner)
    size = len(conversations)
    return [scored[r * size:(r + 1) * size] for r in range(max_rounds + 1)]


def _feedback_stats(conversations: list[Conversation], visible: dict | None) -> dict:
    answers = [len(c.answers) for c in conversations]
    stats = {"conversations": len(conversations),
             "with_feedback": sum(n > 1 for n in answers),
             "answers_per_conversation": {str(n): answers.count(n) for n in sorted(set(answers))}}
    if visible is not None:
        stats["tasks_with_visible_tests"] = sum(bool(v.checks) for v in visible.values())
        stats["visible_examples_dropped"] = sum(len(v.dropped) for v in visible.values())
    return stats


def _sample_rows(conversations: list[Conversation]) -> list[dict]:
    """What --samples-out adds to each EvalPlus row: the raw final answer and the whole conversation."""
    return [{"mode_answers": len(c.answers), "raw": c.messages[-1]["content"], "messages": c.messages,
             "visible_statuses": c.visible} for c in conversations]


def evaluate(benchmark: str, backend, runner: SandboxRunner, config: ModeConfig, limit: int | None = None,
             teacher=None, samples_out: Path | None = None, ks=DEFAULT_KS) -> dict:
    """Generate answers in `config.mode` and score the final ones on the hidden tests."""
    started = time.time()
    items = benchmark_items(benchmark)
    chosen = list(items.values())[:limit] if limit else list(items.values())
    visible = canonical_checked(chosen, runner.run_checked) if config.mode != "single" else None
    prompts = Prompts()
    say(f"crucible eval: {len(chosen)} {benchmark} tasks x {config.n_samples} sample(s), mode {config.mode}")
    conversations = run_mode(chosen, _Labelled(backend, "answers"), runner, config, visible,
                             _Labelled(teacher, "simulated user") if teacher is not None else None, prompts)
    say("crucible eval: scoring the answers of every round in the sandbox")
    generated_s = time.time() - started
    rounds = _per_round(conversations, config.max_rounds, items, runner)
    final = rounds[-1]
    report = summarize(final, items, ks, config.seed)
    report["pass@1_by_round"] = [summarize(r, items, (1,), config.seed)["pass@1"] for r in rounds]
    report["feedback"] = _feedback_stats(conversations, visible)
    if samples_out is not None:
        write_samples(samples_out, final, "evalplus", _sample_rows(conversations))
    generation = {"model": backend.describe(), "mode": config.mode, "rounds": config.max_rounds,
                  "n_samples": config.n_samples, "limit": limit, "prompts": prompts.versions(config.mode),
                  "generation_wall_s": round(generated_s, 2)}
    if teacher is not None and config.mode == "human_feedback":
        generation["teacher"] = teacher.describe()
    generation["fingerprint"] = fingerprint(generation, config.seed)
    packages = ("openai",) if generation["model"]["backend"] != "transformers" else ("transformers", "torch")
    report["manifest"] = manifest(benchmark, runner, final, config.seed, started, generation=generation,
                                  packages=packages)
    return _ordered({"benchmark": benchmark, "mode": config.mode, **report}, ("benchmark", "mode", "pass@1"))
