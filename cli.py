"""`crucible`: the command line for the jobs people run by hand. It parses arguments, calls one library function per
command, and prints the result on stdout; progress and errors go to stderr."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from eval.cli import (
    EXIT_STATUSES,
    FAILED,
    GLOBAL_OPTIONS,
    OK,
    HelpFormatter,
    add_command,
    add_eval_parser,
    fail,
    run_command,
)

DEFAULT_TEACHER = "qwen2.5-coder-1.5b"


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
    from resources.progress import progress
    from resources.sandbox_pool import Limits, SandboxPool, SandboxUnavailable, error_verdict

    if not args.input.is_file():
        return fail(f"--input {args.input}: no such file; give a JSONL file with one {{\"id\", \"code\"}} per line")
    try:
        limits = Limits(timeout_s=args.timeout, memory_mb=args.memory_mb)
        pool = SandboxPool(args.backend, args.workers, limits)
    except (SandboxUnavailable, ValueError) as exc:
        return fail(str(exc))
    rows = list(_read_programs(args.input))
    bad = [r for r in rows if "_error" in r]
    good = [r for r in rows if "_error" not in r]
    with pool, progress(len(good), f"sandbox ({args.backend})", unit="program") as bar:
        for row in bad:
            print(json.dumps(error_verdict(row["id"], row["_error"], args.backend).public()), flush=True)
        for verdict in pool.iter_batch(good):
            print(json.dumps(verdict.public()), flush=True)
            bar.advance()
    return OK


def cmd_teacher_ask(args: argparse.Namespace) -> int:
    from resources.llm_jsonl import run_ask

    if not args.input.is_file():
        return fail(f"--input {args.input}: no such file; give a JSONL file with one "
                    "{\"id\", \"messages\"} per line")
    if args.concurrency < 1:
        return fail(f"--concurrency must be >= 1, got {args.concurrency}")
    failures = run_ask(args.base_url, args.model, args.input, args.output, args.concurrency)
    if failures:
        return fail(f"teacher ask: {failures} request(s) failed or were malformed (each named above); fix those lines "
                    f"or the server, then run the same command again: answered rows are kept", FAILED)
    return OK


def cmd_teacher_serve(args: argparse.Namespace) -> int:
    from resources.llm_server import serve_foreground

    return serve_foreground(args.model, port=args.port, n_ctx=args.n_ctx, n_threads=args.threads, engine=args.engine,
                            slots=args.slots)


def _teacher(args: argparse.Namespace, home):
    from resources.llm import TeacherLLM

    return TeacherLLM.configured(home, args.base_url, args.model, args.teacher)


PYTHON_LANGUAGE = "python"
# The methods that write other languages than Python (their config has a `language`).
MULTILINGUAL_METHODS = ("oss_instruct",)


def _language_problem(args: argparse.Namespace, home) -> str | None:
    """Why `crucible generate --language` cannot run as asked (one line), or None."""
    from assets.generate.code_languages import CODE_LANGUAGES
    from assets.generate.seed_sources import SourceError, require_source

    if args.language not in CODE_LANGUAGES:
        return f"--language {args.language!r}: choose one of {', '.join(CODE_LANGUAGES)}"
    if args.language == PYTHON_LANGUAGE:
        return None
    if args.method not in MULTILINGUAL_METHODS:
        return (f"--language {args.language}: the {args.method} method writes Python only; "
                f"use --method {' or '.join(MULTILINGUAL_METHODS)}")
    try:
        spec = require_source(args.source, home=home)
    except SourceError:
        return None  # the run names the missing source itself
    if args.language not in spec.languages:
        return (f"--language {args.language}: source {args.source!r} reads {', '.join(spec.languages)} files only; "
                f"give a source whose `languages` include {args.language} in sources.yaml "
                f"(e.g. {{kind: local, path: DIR, license: MIT, languages: [{args.language}]}})")
    return None


def cmd_generate(args: argparse.Namespace) -> int:
    from assets.generate.method_run import MissingParents
    from assets.generate.methods import DEFAULT_METHOD, METHODS, UnknownMethod, require_method
    from assets.generate.seed_sources import SourceError
    from assets.runs import run_method
    from resources.bundled_models import LocalTeacherError
    from resources.home import Home
    from resources.sandbox import Sandbox, SandboxUnavailable

    if args.list_methods:
        print("\n".join(METHODS))
        return OK
    if args.seeds is not None and args.seeds < 1:
        return fail(f"--seeds must be >= 1, got {args.seeds}")
    if args.feedback not in ("execution", "human_sim"):
        return fail(f"--feedback {args.feedback!r}: use execution or human_sim")
    try:
        require_method(args.method)
    except UnknownMethod as exc:
        return fail(str(exc))
    home = Home.from_env()
    problem = _language_problem(args, home)
    if problem:
        return fail(problem)
    dialogue_settings = {"feedback_mode": args.feedback, "max_turns": args.max_turns,
                         "aiev_complete": args.aiev_complete}
    run_config = {"ops": {"verified_dialogues": {"config": dialogue_settings},
                          "seed_snippets": {"config": {"mode": args.mode}}}}
    if args.method != DEFAULT_METHOD:
        run_config = {"ops": {"method_dialogues": {"config": {"dialogues": {
            "max_turns": args.max_turns, "aiev_complete": args.aiev_complete}}}}}
        if args.language != PYTHON_LANGUAGE:
            run_config["ops"]["method_dialogues"]["config"]["oss_instruct"] = {"language": args.language}
    return _print_summary(lambda: run_method(
        args.method, args.source, _teacher(args, home), Sandbox(backend=args.backend, home=str(home.root)), home,
        args.seeds, run_config, curate=not args.no_curate),
        (SourceError, SandboxUnavailable, LocalTeacherError, MissingParents))


def cmd_curate(args: argparse.Namespace) -> int:
    from assets.runs import NothingToCurate, run_curation
    from resources.embedder import Embedder
    from resources.home import Home
    from resources.sandbox import Sandbox, SandboxUnavailable

    home = Home.from_env()
    root = str(home.root)
    sandbox = Sandbox(backend=args.backend, home=root)
    return _print_summary(lambda: run_curation(args.source, Embedder(home=root), sandbox, _teacher(args, home), home),
                          (NothingToCurate, SandboxUnavailable))


def cmd_import(args: argparse.Namespace) -> int:
    from assets.imports.importing import ImportRequest, run_import
    from assets.imports.presets import BadImport
    from resources.bundled_models import LocalTeacherError
    from resources.embedder import Embedder
    from resources.home import Home
    from resources.sandbox import Sandbox, SandboxUnavailable

    columns = {}
    for pair in args.columns or []:
        role, sep, column = pair.partition("=")
        if not sep or not role or not column:
            return fail(f"--columns {pair!r}: write ROLE=COLUMN, e.g. --columns instruction=prompt response=answer")
        columns[role] = column
    home = Home.from_env()
    root = str(home.root)
    request = ImportRequest(args.preset, args.data, args.name, args.limit, args.verify, columns, args.license)
    return _print_summary(lambda: run_import(request, _teacher(args, home), Sandbox(backend=args.backend, home=root),
                                             Embedder(home=root), home),
                          (BadImport, SandboxUnavailable, LocalTeacherError))


def _print_summary(work, refusals: tuple) -> int:
    """Run `work` (runs of the graph) and print its JSON summary: an error among `refusals` is a usage error (nothing
    ran), a failed run a failure, each as one line."""
    from assets.runs import RunFailed

    try:
        summary = work()
    except refusals as exc:
        return fail(str(exc))
    except RunFailed as exc:
        return fail(str(exc), FAILED)
    print(json.dumps(summary, indent=2))
    return OK


def cmd_check(args: argparse.Namespace) -> int:
    from assets.checks.dagster_checks import check_stored, failed
    from definitions import defs
    from resources.home import Home
    from resources.sandbox import Sandbox

    home = Home.from_env()
    if args.sample < 0:
        return fail(f"--sample must be >= 0, got {args.sample}")
    try:
        lines = check_stored(defs, home, args.asset, args.partition, args.sample,
                             resources={"sandbox": Sandbox(backend=args.backend, home=str(home.root))})
    except ValueError as exc:
        return fail(str(exc))
    for line in lines:
        print(line.text(), flush=True)
    return FAILED if failed(lines) else OK


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
        return fail(str(exc))
    except DemoError as exc:
        return fail(str(exc), FAILED)
    print(where_results_are(home, result))
    return OK


def cmd_self_learn(args: argparse.Namespace) -> int:
    from assets.generate.seed_sources import SourceError
    from assets.models.teacher_selection import SelectionConfig
    from assets.self_learning import SelfLearnError, SelfLearnSettings, run_self_learning
    from resources.bundled_models import LocalTeacherError
    from resources.embedder import Embedder
    from resources.home import Home
    from resources.hub import HubPublisher
    from resources.sandbox import Sandbox, SandboxUnavailable
    from resources.teacher_state import TeacherStateError

    home = Home.from_env()
    root = str(home.root)
    try:
        settings = SelfLearnSettings(rounds=args.rounds, seeds=args.seeds, recipe=args.student_recipe,
                                     source=args.source, train_steps=args.train_steps,
                                     test_fraction=args.test_fraction, benchmark_limit=args.benchmark_limit,
                                     selection=SelectionConfig(confidence=args.confidence,
                                                               feedback_rounds=args.feedback_rounds))
    except SelfLearnError as exc:
        return fail(str(exc))
    except ValueError as exc:  # pydantic's validation of the selection settings
        problem = exc.errors()[0] if hasattr(exc, "errors") else {}
        return fail(f"--{'-'.join(map(str, problem.get('loc', ('value',))))}".replace("_", "-")
                    + f": {problem.get('msg', str(exc))}")
    resources = {"teacher": _teacher(args, home), "sandbox": Sandbox(backend=args.backend, home=root),
                 "embedder": Embedder(home=root), "hub": HubPublisher(home=root)}
    return _print_summary(lambda: run_self_learning(settings, home, resources,
                                                    say=lambda line: print(line, file=sys.stderr, flush=True)),
                          (SelfLearnError, SourceError, SandboxUnavailable, LocalTeacherError, TeacherStateError))


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
        return fail(str(exc))
    print(f"crucible decontam: {flagged} of {total} rows contaminated -> {args.output}", file=sys.stderr)
    return OK


def cmd_dataset(args: argparse.Namespace) -> int:
    from assets.release.sft_dataset import SftConfig
    from assets.release.sft_mix import MIX_HELP, parse_mix
    from assets.runs import run_datasets
    from resources.home import Home
    from resources.hub import HubPublisher

    if not 0 <= args.test_fraction < 1:
        return fail(f"--test-fraction must be in [0, 1), got {args.test_fraction}")
    try:
        mix = json.loads(args.mix) if args.mix else {}
        if not isinstance(mix, dict) or not all(isinstance(v, (int, float)) for v in mix.values()):
            raise ValueError(f"{MIX_HELP}")
        parse_mix(mix)
    except json.JSONDecodeError as exc:
        return fail(f"--mix is not JSON ({exc.msg}): {MIX_HELP}")
    except ValueError as exc:
        return fail(f"--mix: {exc}")
    home = Home.from_env()
    hub = HubPublisher.configured(home, args.repo, args.public)
    config = SftConfig(partitions=args.sources or [], test_fraction=args.test_fraction, mix=mix, mix_seed=args.mix_seed)
    return _print_summary(lambda: run_datasets(hub, home, config), ())


def cmd_export(args: argparse.Namespace) -> int:
    from assets.release.export import ExportError, export_release
    from resources.home import Home

    return _print_summary(lambda: export_release(Home.from_env(), args.format, args.output, args.sources,
                                                 args.release), (ExportError,))


def cmd_catalog(args: argparse.Namespace) -> int:
    import duckdb

    from resources.home import Home
    from resources.store import catalog_path, catalog_summary, query_catalog

    home = Home.from_env()
    if args.sql:
        try:
            print(query_catalog(home, args.sql))
        except duckdb.Error as exc:
            return fail(f"--sql: {str(exc).splitlines()[0]}")
        return OK
    for view, rows, parts in catalog_summary(home):
        print(f"{view:28} {rows:8} rows  {parts:3} partition(s)")
    print(f"catalog: {catalog_path(home)}  (open it with: duckdb {catalog_path(home)})", file=sys.stderr)
    return OK


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("crucible")
    except PackageNotFoundError:
        return "unknown (not installed; `pip install -e .` in the repository)"


def _teacher_options(parser: argparse.ArgumentParser, role: str) -> None:
    parser.add_argument("--base-url", default=None,
                        help=f"OpenAI-compatible server of the teacher that {role} (default: $CRUCIBLE_LLM_BASE_URL; "
                             "unset: the bundled teacher)")
    parser.add_argument("--model", default=None, help="model name on that server (default: $CRUCIBLE_LLM_MODEL)")
    parser.add_argument("--teacher", default=DEFAULT_TEACHER, help="bundled teacher when no base URL is set")


def build_parser() -> argparse.ArgumentParser:
    from resources.sandbox_pool import BACKENDS
    from sandbox_image.limits import DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT_S

    parser = argparse.ArgumentParser(prog="crucible", description=__doc__, formatter_class=HelpFormatter,
                                     epilog=EXIT_STATUSES, parents=[GLOBAL_OPTIONS])
    parser.add_argument("--version", action="version", version=f"crucible {version()}",
                        help="print the installed version and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sandbox = add_command(sub, "sandbox", "run programs in the sandbox")
    sandbox_sub = sandbox.add_subparsers(dest="sandbox_command", required=True, metavar="{run}")
    run = add_command(sandbox_sub, "run", "run a JSONL file of programs; one JSON verdict per line on stdout")
    run.add_argument("--input", type=Path, required=True, help='JSONL: {"id", "code", "timeout_s"?} per line')
    run.add_argument("--backend", choices=BACKENDS, default="bwrap", help="sandbox backend")
    run.add_argument("--workers", type=int, default=2, help="programs run at once")
    run.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S,
                     help="wall-clock limit per program, seconds, where a program gives no timeout_s")
    run.add_argument("--memory-mb", type=int, default=DEFAULT_MEMORY_MB, help="address-space limit per program, MiB")
    run.set_defaults(func=cmd_sandbox_run)

    teacher = add_command(sub, "teacher", "the teacher LLM")
    teacher_sub = teacher.add_subparsers(dest="teacher_command", required=True, metavar="{ask,serve}")
    ask = add_command(teacher_sub, "ask", "answer a JSONL file of chat requests; resumable, cached")
    ask.add_argument("--base-url", required=True, help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1")
    ask.add_argument("--model", required=True, help="model name on that server")
    ask.add_argument("--input", type=Path, required=True, help='JSONL: {"id", "messages", "temperature"?, '
                                                               '"max_tokens"?} per line')
    ask.add_argument("--output", type=Path, required=True,
                     help='JSONL: {"id", "content", "usage", "cached"}; rows already there are kept, not asked again')
    ask.add_argument("--concurrency", type=int, default=8, help="requests in flight")
    ask.set_defaults(func=cmd_teacher_ask)
    serve = add_command(teacher_sub, "serve", "run the bundled offline teacher in the foreground (Ctrl-C stops)")
    serve.add_argument("--model", default=DEFAULT_TEACHER,
                       help="qwen2.5-coder-1.5b, qwen2.5-coder-0.5b, smollm2-135m, or a GGUF file path")
    serve.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1")
    serve.add_argument("--n-ctx", type=int, default=4096, help="context size in tokens per sequence (default 4096)")
    serve.add_argument("--threads", type=int, default=0, help="decode threads; 0 (the default) uses every usable core")
    serve.add_argument("--engine", choices=("auto", "llama-server", "python"), default=None,
                       help="llama.cpp's llama-server (parallel slots) or llama-cpp-python's server (one request at "
                            "a time); default $CRUCIBLE_TEACHER_ENGINE, else auto: llama-server where it is installed")
    serve.add_argument("--slots", type=int, default=0,
                       help="llama-server's parallel sequences; 0 (the default) is $CRUCIBLE_TEACHER_SLOTS, else 4")
    serve.set_defaults(func=cmd_teacher_serve)

    generate = add_command(sub, "generate", "one generation method on one source, then curation (dedup and "
                                            "decontamination) of the source; prints a JSON summary",
                           "One generation method on one seed source (default function_instruct: seeds -> problems "
                           "-> verified dialogues), then the source's curation (deduplicated_dialogues -> "
                           "decontaminated_dialogues), each as a run of its named job recorded in the Dagster "
                           "instance under $CRUCIBLE_HOME; prints a JSON summary of both.")
    generate.add_argument("--list-methods", action="store_true", help="print the generation methods, one per line")
    generate.add_argument("--method", default="function_instruct",
                          help="the generation method (crucible generate --list-methods); methods that start from "
                               "verified problems or dialogues take them from the source's earlier runs")
    generate.add_argument("--source", default="stdlib", help="a source name from $CRUCIBLE_HOME/sources.yaml")
    generate.add_argument("--seeds", type=int, default=None, help="use at most this many seeds, or parents for "
                                                                  "derived methods (default: 500 seeds; all parents)")
    generate.add_argument("--mode", choices=("function", "window", "both"), default="function",
                          help="seeds: documented functions, 1-15-line windows, or both")
    generate.add_argument("--language", default="python",
                          help="the language of the problems, solutions and tests: python, cpp, c, javascript, "
                               "typescript, rust, go, java, php or bash (other than python: --method oss_instruct, "
                               "on a source whose `languages` include it)")
    generate.add_argument("--feedback", default="execution", help="execution or human_sim")
    generate.add_argument("--max-turns", type=int, default=4, help="programmer answers per problem")
    generate.add_argument("--aiev-complete", action="store_true",
                          help="AutoCoder's dialogue shape: verified dialogues also hold the unit tests and the "
                               "passing run's output as their last turn")
    generate.add_argument("--no-curate", action="store_true",
                          help="skip the curation run (`crucible curate --source S` runs it later)")
    _teacher_options(generate, "writes problems and answers")
    generate.add_argument("--backend", choices=BACKENDS, default="bwrap", help="sandbox backend")
    generate.set_defaults(func=cmd_generate)

    curate = add_command(sub, "curate", "dedup and decontaminate a source's generated dialogues; prints a JSON "
                                        "summary",
                         "Run the `curate` job on a source generated earlier (crucible generate --no-curate, or a "
                         "generation run from the UI): deduplicated_dialogues, then decontaminated_dialogues with "
                         "its contamination report.")
    curate.add_argument("--source", default="stdlib", help="the seed source whose dialogues to curate")
    curate.add_argument("--backend", choices=BACKENDS, default="bwrap",
                        help="sandbox for decontamination's execution layer")
    _teacher_options(curate, "writes a function for rows without one (decontamination's execution layer)")
    curate.set_defaults(func=cmd_curate)

    imports = add_command(sub, "import", "import an instruction dataset (Magicoder, evol-codealpaca, Code-Feedback or "
                                         "your own): verify, dedup, decontaminate; prints a JSON summary",
                          "Register the data as an import source (its own partition) and run `import_and_curate` on "
                          "it: the rows become dialogues (method import:<preset>) with the code of each answer "
                          "extracted, are verified in the sandbox against tests the teacher writes (--verify tests), "
                          "then deduplicated against every partition and decontaminated like generated rows.")
    imports.add_argument("--preset", required=True,
                         choices=("magicoder-oss-instruct", "evol-codealpaca", "code-feedback", "generic"),
                         help="the dataset's column shape")
    imports.add_argument("--data", required=True, help="a local .jsonl, .json or .parquet file, or a dataset id")
    imports.add_argument("--name", default=None, help="the source's name (default: from the data's file name)")
    imports.add_argument("--limit", type=int, default=None, help="import the first K rows only (default: every row)")
    imports.add_argument("--verify", choices=("tests", "none"), default="tests",
                         help="run each Python solution against tests the teacher writes (rows that fail are "
                              "rejected), or take the rows as they are")
    imports.add_argument("--columns", nargs="+", metavar="ROLE=COLUMN",
                         help="rename the preset's columns (roles: instruction, response, messages, lang, seed, id; "
                              "default: the preset's names)")
    imports.add_argument("--license", default=None, help="the data's licence (SPDX id), when the preset's is unknown "
                                                         "or different (default: the preset's)")
    imports.add_argument("--backend", choices=BACKENDS, default="bwrap", help="sandbox for verification and "
                                                                              "decontamination")
    _teacher_options(imports, "writes the tests (and functions for decontamination's execution layer)")
    imports.set_defaults(func=cmd_import)

    decontam = add_command(sub, "decontam", "flag rows that are HumanEval or MBPP problems (n-gram, embedding, "
                                            "execution layers, calibrated default thresholds)")
    decontam.add_argument("--input", type=Path, required=True,
                          help='JSONL: {"id", "instruction", "solution"?} per line')
    decontam.add_argument("--output", type=Path, required=True,
                          help='JSONL: {"id", "contaminated", "benchmark", "task_id", "score", "method"} per row')
    decontam.add_argument("--layers", default="ngram,embedding,execution",
                          help="comma-separated layers to apply")
    decontam.add_argument("--online", nargs="*", default=[], metavar="BENCHMARK",
                          help="also load these benchmarks through `datasets` when reachable: humaneval_plus, "
                               "mbpp_plus (skipped with a logged reason when offline; default: none)")
    decontam.add_argument("--backend", choices=BACKENDS, default="bwrap", help="sandbox for the execution layer")
    decontam.add_argument("--workers", type=int, default=2, help="sandbox workers")
    decontam.add_argument("--solver", default=DEFAULT_TEACHER,
                          help="bundled model that writes a function for rows without one, so the execution layer "
                               "can judge them ('none': judge those rows by the text layers only)")
    decontam.add_argument("--solver-base-url", default=None,
                          help="an OpenAI-compatible server to use as the solver instead of a bundled model "
                               "(default: none)")
    decontam.add_argument("--solver-model", default=None, help="model name on that server (default: none)")
    decontam.set_defaults(func=cmd_decontam)

    add_eval_parser(sub)

    dataset = add_command(sub, "dataset", "build the SFT dataset (train/test Parquet, dataset card) from every "
                                          "curated source and publish it (staged under $CRUCIBLE_HOME/hub without "
                                          "HF_TOKEN)")
    dataset.add_argument("--sources", nargs="*", metavar="SOURCE", help="seed sources to include (default: all)")
    dataset.add_argument("--test-fraction", type=float, default=0.1, help="share of problems held out")
    dataset.add_argument("--repo", help="Hub dataset repo id (default: $CRUCIBLE_HUB_DATASET_REPO)")
    dataset.add_argument("--public", action="store_true", help="create the Hub repo public (default: private)")
    dataset.add_argument("--mix", default=None, metavar="JSON",
                         help="how much of each method and source to take: a JSON object of 'method:<name>' or "
                              "'source:<name>' to a share in [0, 1] or a row cap (default: every row), e.g. "
                              "'{\"method:import:magicoder-oss-instruct\": 0.5, \"source:stdlib\": 1000}'")
    dataset.add_argument("--mix-seed", type=int, default=0, help="seed of the mix's row draw")
    dataset.set_defaults(func=cmd_dataset)

    export = add_command(sub, "export", "write the SFT dataset in a published dataset's columns (magicoder, "
                                        "code-feedback, aiev, sharegpt): data/<split>-*.parquet and a README; prints "
                                        "a JSON summary")
    export.add_argument("--format", required=True, choices=("magicoder", "code-feedback", "aiev", "sharegpt"),
                        help="the published shape: Magicoder-OSS-Instruct, m-a-p/Code-Feedback, AutoCoder's "
                             "AIEV-Instruct roles, or ShareGPT conversations")
    export.add_argument("--output", type=Path, required=True,
                        help="folder to write (new, empty, or an earlier export, which is replaced)")
    export.add_argument("--sources", nargs="*", metavar="SOURCE", help="seed sources to include (default: all)")
    export.add_argument("--release", type=Path,
                        help="a release folder ($CRUCIBLE_HOME/datasets/<name>/<version>) to export instead of the "
                             "latest sft_dataset table (default: the table)")
    export.set_defaults(func=cmd_export)

    catalog = add_command(sub, "catalog", "refresh the DuckDB catalog (a view per asset) and list it, or query it")
    catalog.add_argument("--sql", help="a query to run, e.g. \"SELECT split, count(*) FROM sft_dataset GROUP BY "
                                       "ALL\" (default: list the views)")
    catalog.set_defaults(func=cmd_catalog)

    demo = add_command(sub, "demo", "run what the pipeline has so far, offline, and say where the results are")
    demo.add_argument("--home", default=".crucible", help="CRUCIBLE_HOME for the demo's outputs")
    demo.add_argument("--seeds", type=int, default=6, help="stdlib seeds to turn into dialogues")
    demo.add_argument("--teacher", default=DEFAULT_TEACHER, help="bundled teacher model or a GGUF path")
    demo.add_argument("--recipe", default="cpu-smollm2", help="fine-tuning recipe (finetune/recipes)")
    demo.add_argument("--train-steps", type=int, default=5, help="training steps")
    demo.add_argument("--eval-limit", type=int, default=5, help="HumanEval problems to score the checkpoint on")
    demo.set_defaults(func=cmd_demo)

    learn = add_command(sub, "self-learn", "AutoCoder's self-learning rounds: generate and curate -> dataset -> "
                                           "train -> evaluate -> decide; the winner generates the next round",
                        "Run rounds 1..R (counted from the home's first round; finished rounds are read back, not "
                        "run again). Each round: the current teacher generates and curates SEEDS fresh seeds of the "
                        "source (partition <source>~r<round>), the SFT dataset is rebuilt, the student recipe is "
                        "trained, student and teacher answer the held-out split, and the student becomes the next "
                        "round's teacher only when it is better at the given confidence (McNemar). One line per "
                        "round on stderr, a JSON summary on stdout.")
    learn.add_argument("--rounds", type=int, required=True, help="rounds to have finished")
    learn.add_argument("--seeds", type=int, required=True, help="fresh seeds per round")
    learn.add_argument("--student-recipe", default="cpu-smollm2", help="the student's recipe (finetune/recipes)")
    learn.add_argument("--source", default="stdlib", help="the seed source the rounds draw from")
    learn.add_argument("--train-steps", type=int, default=None, help="training steps (default: the recipe's)")
    learn.add_argument("--test-fraction", type=float, default=0.2, help="share of problems held out for the decision")
    learn.add_argument("--confidence", type=float, default=0.95,
                       help="the student takes over only when better at this confidence")
    learn.add_argument("--feedback-rounds", type=int, default=2,
                       help="answers after the first on the held-out problems, each after a failing run's output")
    learn.add_argument("--benchmark-limit", type=int, default=0,
                       help="also score each checkpoint and the teacher on the first K HumanEval problems (0: no)")
    _teacher_options(learn, "starts the teaching stage")
    learn.add_argument("--backend", choices=BACKENDS, default="bwrap", help="sandbox backend")
    learn.set_defaults(func=cmd_self_learn)

    check = add_command(sub, "check", "run the asset checks against what is stored: one line per check and "
                                      "partition (PASS/FAIL/WARN/SKIP, check, asset, partition, first problem); exit 1 "
                                      "when an ERROR-severity check fails (docs/checks.md)")
    check.add_argument("--asset", help="the asset whose checks to run (default: every asset)")
    check.add_argument("--partition", help="the partition to check, e.g. stdlib or evol_instruct|stdlib (default: "
                                           "every stored partition)")
    check.add_argument("--sample", type=int, default=16,
                       help="rows the re-run checks run again in the sandbox per partition; 0: every row")
    check.add_argument("--backend", choices=BACKENDS, default="bwrap", help="sandbox for the re-run checks")
    check.set_defaults(func=cmd_check)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "verbose", False):
        from assets.runs import show_dagster_log

        show_dagster_log()
    return run_command(args)


if __name__ == "__main__":
    sys.exit(main())
