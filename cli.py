"""`crucible`: the command line for the jobs people run by hand. It parses arguments and calls the libraries."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _fail(message: str, code: int = 2) -> int:
    print(f"crucible: error: {message}", file=sys.stderr)
    return code


def _read_programs(path: Path):
    """Yield program dicts from a JSONL file; a malformed line becomes an error row, never a crash."""
    from resources.files import jsonl_lines

    for number, row, error in jsonl_lines(path):
        if error:
            yield {"id": f"line-{number}", "_error": f"line {number} is not valid JSON: {error}"}
            continue
        if not isinstance(row, dict):
            yield {"id": f"line-{number}", "_error": f"line {number} is not a JSON object"}
            continue
        if "id" not in row:
            row["id"] = f"line-{number}"
        row["id"] = str(row["id"])
        yield row


def cmd_sandbox_run(args: argparse.Namespace) -> int:
    from resources.sandbox import Limits, SandboxPool, SandboxUnavailable, error_verdict

    if not args.input.is_file():
        return _fail(f"--input {args.input}: no such file; give a JSONL file with one {{\"id\", \"code\"}} per line")
    try:
        limits = Limits(timeout_s=args.timeout, memory_mb=args.memory_mb)
        pool = SandboxPool(args.backend, args.workers, limits)
    except (SandboxUnavailable, ValueError) as exc:
        return _fail(str(exc))
    rows = list(_read_programs(args.input))
    bad = [r for r in rows if "_error" in r]
    good = [r for r in rows if "_error" not in r]
    with pool:
        for row in bad:
            print(json.dumps(error_verdict(row["id"], row["_error"], args.backend).public()), flush=True)
        for verdict in pool.iter_batch(good):
            print(json.dumps(verdict.public()), flush=True)
    return 0


def cmd_teacher_ask(args: argparse.Namespace) -> int:
    from resources.llm_jsonl import run_ask

    if not args.input.is_file():
        return _fail(f"--input {args.input}: no such file; give a JSONL file with one "
                     "{\"id\", \"messages\"} per line")
    if args.concurrency < 1:
        return _fail(f"--concurrency must be >= 1, got {args.concurrency}")
    failures = run_ask(args.base_url, args.model, args.input, args.output, args.concurrency)
    return 1 if failures else 0


def cmd_teacher_serve(args: argparse.Namespace) -> int:
    from resources.llm_server import serve_foreground

    return serve_foreground(args.model, port=args.port, n_ctx=args.n_ctx, n_threads=args.threads)


def cmd_generate(args: argparse.Namespace) -> int:
    from assets.generate.method_run import MissingParents
    from assets.generate.methods import METHODS, UnknownMethod, require_method
    from assets.generate.seed_sources import SourceError
    from assets.runs import run_method
    from resources.bundled_models import LocalTeacherError
    from resources.home import Home
    from resources.llm import TeacherLLM
    from resources.sandbox import Sandbox, SandboxUnavailable

    if args.list_methods:
        print("\n".join(METHODS))
        return 0
    if args.seeds is not None and args.seeds < 1:
        return _fail(f"--seeds must be >= 1, got {args.seeds}")
    if args.feedback not in ("execution", "human_sim"):
        return _fail(f"--feedback {args.feedback!r}: use execution or human_sim")
    try:
        require_method(args.method)
    except UnknownMethod as exc:
        return _fail(str(exc))
    home = Home.from_env()
    teacher = TeacherLLM.configured(home, args.base_url, args.model, args.teacher)
    dialogue_settings = {"feedback_mode": args.feedback, "max_turns": args.max_turns,
                         "aiev_complete": args.aiev_complete}
    run_config = {"ops": {"verified_dialogues": {"config": dialogue_settings},
                          "seed_snippets": {"config": {"mode": args.mode}}}}
    if args.method != "function_instruct":
        run_config = {"ops": {"method_dialogues": {"config": {"dialogues": {
            "max_turns": args.max_turns, "aiev_complete": args.aiev_complete}}}}}
    try:
        summary = run_method(args.method, args.source, teacher, Sandbox(backend=args.backend, home=str(home.root)),
                             home, args.seeds, run_config)
    except (SourceError, SandboxUnavailable, LocalTeacherError, MissingParents) as exc:
        return _fail(str(exc))
    print(json.dumps(summary, indent=2))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from assets.demo import DemoError, DemoSettings, run_demo, where_results_are
    from resources.bundled_models import LocalTeacherError
    from resources.home import Home
    from resources.sandbox import SandboxUnavailable

    home = Home(Path(args.home).resolve())
    settings = DemoSettings(teacher=args.teacher, seeds=args.seeds, recipe=args.recipe, train_steps=args.train_steps,
                            eval_limit=args.eval_limit)
    try:
        result = run_demo(home, settings, say=lambda line: print(line, flush=True))
    except (SandboxUnavailable, LocalTeacherError) as exc:
        return _fail(str(exc))
    except DemoError as exc:
        return _fail(str(exc), 1)
    print(where_results_are(home, result))
    return 0


def cmd_decontam(args: argparse.Namespace) -> int:
    from assets.curate.decontam_file import DecontamError, decontaminate_file
    from resources.teacher_endpoint import TeacherEndpoint

    solver = None
    if args.solver_base_url or args.solver != "none":
        solver = TeacherEndpoint(base_url=args.solver_base_url, model=args.solver_model, bundled=args.solver)
    try:
        flagged, total = decontaminate_file(args.input, args.output, args.layers, args.backend, args.workers, solver,
                                            args.online, say=lambda line: print(line, file=sys.stderr))
    except DecontamError as exc:
        return _fail(str(exc))
    print(f"crucible decontam: {flagged} of {total} rows contaminated -> {args.output}", file=sys.stderr)
    return 0


def cmd_dataset(args: argparse.Namespace) -> int:
    from assets.release.sft_dataset import SftConfig
    from assets.runs import root_cause, run_datasets
    from resources.home import Home
    from resources.hub import HubPublisher

    home = Home.from_env()
    hub = HubPublisher.configured(home, args.repo, args.public)
    try:
        summary = run_datasets(hub, home, SftConfig(partitions=args.sources or [], test_fraction=args.test_fraction))
    except Exception as exc:  # a failed step: report the user-facing cause, not Dagster's wrapper
        return _fail(root_cause(exc), 1)
    print(json.dumps(summary, indent=2))
    return 0


def cmd_catalog(args: argparse.Namespace) -> int:
    import duckdb

    from resources.home import Home
    from resources.store import catalog_path, catalog_summary, query_catalog

    home = Home.from_env()
    if args.sql:
        try:
            print(query_catalog(home, args.sql))
        except duckdb.Error as exc:
            return _fail(f"--sql: {str(exc).splitlines()[0]}")
        return 0
    for view, rows, parts in catalog_summary(home):
        print(f"{view:28} {rows:8} rows  {parts:3} partition(s)")
    print(f"catalog: {catalog_path(home)}  (open it with: duckdb {catalog_path(home)})", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from resources.sandbox import BACKENDS
    from sandbox_image.limits import DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT_S

    parser = argparse.ArgumentParser(prog="crucible", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    sandbox = sub.add_parser("sandbox", help="run programs in the sandbox")
    sandbox_sub = sandbox.add_subparsers(dest="sandbox_command", required=True)
    run = sandbox_sub.add_parser("run", help="run a JSONL file of programs; one JSON verdict per line on stdout")
    run.add_argument("--input", type=Path, required=True, help='JSONL: {"id", "code", "timeout_s"?} per line')
    run.add_argument("--backend", choices=BACKENDS, default="bwrap")
    run.add_argument("--workers", type=int, default=2)
    run.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S,
                     help="wall-clock limit per program, seconds, where a program gives no timeout_s "
                          "(default %(default)s)")
    run.add_argument("--memory-mb", type=int, default=DEFAULT_MEMORY_MB,
                     help="address-space limit per program, MiB (default %(default)s)")
    run.set_defaults(func=cmd_sandbox_run)

    teacher = sub.add_parser("teacher", help="the teacher LLM")
    teacher_sub = teacher.add_subparsers(dest="teacher_command", required=True)
    ask = teacher_sub.add_parser("ask", help="answer a JSONL file of chat requests; resumable, cached")
    ask.add_argument("--base-url", required=True, help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1")
    ask.add_argument("--model", required=True)
    ask.add_argument("--input", type=Path, required=True, help='JSONL: {"id", "messages", "temperature"?, '
                                                               '"max_tokens"?} per line')
    ask.add_argument("--output", type=Path, required=True, help='JSONL: {"id", "content", "usage", "cached"}')
    ask.add_argument("--concurrency", type=int, default=8)
    ask.set_defaults(func=cmd_teacher_ask)
    serve = teacher_sub.add_parser("serve", help="run the bundled offline teacher in the foreground (Ctrl-C stops)")
    serve.add_argument("--model", default="qwen2.5-coder-1.5b",
                       help="qwen2.5-coder-1.5b (default), qwen2.5-coder-0.5b, smollm2-135m, or a GGUF file path")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--n-ctx", type=int, default=4096, help="context size in tokens")
    serve.add_argument("--threads", type=int, default=0, help="decode threads; 0 uses every usable core")
    serve.set_defaults(func=cmd_teacher_serve)

    generate = sub.add_parser("generate", help="one generation method on one source (default function_instruct: "
                                               "seeds -> problems -> verified dialogues); prints a JSON summary")
    generate.add_argument("--list-methods", action="store_true", help="print the generation methods, one per line")
    generate.add_argument("--method", default="function_instruct",
                          help="the generation method (crucible generate --list-methods); methods that start from "
                               "verified problems or dialogues take them from the source's earlier runs")
    generate.add_argument("--source", default="stdlib", help="a source name from $CRUCIBLE_HOME/sources.yaml, or "
                                                            "stdlib (default)")
    generate.add_argument("--seeds", type=int, default=None, help="use at most this many seeds, or parents for "
                                                                  "derived methods (default: 500 seeds; all parents)")
    generate.add_argument("--mode", choices=("function", "window", "both"), default="function",
                          help="seeds: documented functions (default), 1-15-line windows, or both")
    generate.add_argument("--feedback", default="execution", help="execution (default) or human_sim")
    generate.add_argument("--max-turns", type=int, default=4, help="programmer answers per problem")
    generate.add_argument("--aiev-complete", action="store_true",
                          help="AutoCoder's dialogue shape: verified dialogues also hold the unit tests and the "
                               "passing run's output as their last turn")
    generate.add_argument("--base-url", default=None, help="OpenAI-compatible teacher (default "
                                                           "$CRUCIBLE_LLM_BASE_URL; empty: the bundled teacher)")
    generate.add_argument("--model", default=None, help="model name on that server ($CRUCIBLE_LLM_MODEL)")
    generate.add_argument("--teacher", default="qwen2.5-coder-1.5b", help="bundled teacher when no base URL is set")
    generate.add_argument("--backend", choices=BACKENDS, default="bwrap")
    generate.set_defaults(func=cmd_generate)

    decontam = sub.add_parser("decontam", help="flag rows that are HumanEval or MBPP problems (n-gram, embedding, "
                                               "execution layers, calibrated default thresholds)")
    decontam.add_argument("--input", type=Path, required=True,
                          help='JSONL: {"id", "instruction", "solution"?} per line')
    decontam.add_argument("--output", type=Path, required=True,
                          help='JSONL: {"id", "contaminated", "benchmark", "task_id", "score", "method"} per row')
    decontam.add_argument("--layers", default="ngram,embedding,execution",
                          help="comma-separated layers to apply (default: all three)")
    decontam.add_argument("--online", nargs="*", default=[], metavar="BENCHMARK",
                          help="also load these benchmarks through `datasets` when reachable: humaneval_plus, "
                               "mbpp_plus (skipped with a logged reason when offline)")
    decontam.add_argument("--backend", choices=BACKENDS, default="bwrap", help="sandbox for the execution layer")
    decontam.add_argument("--workers", type=int, default=2)
    decontam.add_argument("--solver", default="qwen2.5-coder-1.5b",
                          help="bundled model that writes a function for rows without one, so the execution layer "
                               "can judge them ('none': judge those rows by the text layers only)")
    decontam.add_argument("--solver-base-url", default=None,
                          help="an OpenAI-compatible server to use as the solver instead of a bundled model")
    decontam.add_argument("--solver-model", default=None, help="model name on that server")
    decontam.set_defaults(func=cmd_decontam)

    from eval.cli import add_eval_parser
    add_eval_parser(sub)

    dataset = sub.add_parser("dataset", help="build the SFT dataset (train/test Parquet, dataset card) from every "
                                             "curated source and publish it (staged under $CRUCIBLE_HOME/hub "
                                             "without HF_TOKEN)")
    dataset.add_argument("--sources", nargs="*", metavar="SOURCE", help="seed sources to include (default: all)")
    dataset.add_argument("--test-fraction", type=float, default=0.1, help="share of problems held out (default 0.1)")
    dataset.add_argument("--repo", help="Hub dataset repo id (default: $CRUCIBLE_HUB_DATASET_REPO)")
    dataset.add_argument("--public", action="store_true", help="create the Hub repo public (default: private)")
    dataset.set_defaults(func=cmd_dataset)

    catalog = sub.add_parser("catalog", help="refresh the DuckDB catalog (a view per asset) and list it, or query it")
    catalog.add_argument("--sql", help="a query to run, e.g. \"SELECT split, count(*) FROM sft_dataset GROUP BY ALL\"")
    catalog.set_defaults(func=cmd_catalog)

    demo = sub.add_parser("demo", help="run what the pipeline has so far, offline, and say where the results are")
    demo.add_argument("--home", default=".crucible", help="CRUCIBLE_HOME for the demo's outputs")
    demo.add_argument("--seeds", type=int, default=6, help="stdlib seeds to turn into dialogues")
    demo.add_argument("--teacher", default="qwen2.5-coder-1.5b", help="bundled teacher model or a GGUF path")
    demo.add_argument("--recipe", default="cpu-smollm2", help="fine-tuning recipe (finetune/recipes)")
    demo.add_argument("--train-steps", type=int, default=5, help="training steps")
    demo.add_argument("--eval-limit", type=int, default=5, help="HumanEval problems to score the checkpoint on")
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
