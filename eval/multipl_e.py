"""MultiPL-E: HumanEval and MBPP translated into other languages, as BenchmarkItems that run in the sandbox.

    items = load_multipl_e("multipl-e-humaneval-cpp")                 # from the Hub; {} with a log line when offline
    items = load_multipl_e("multipl-e", Path("rows.jsonl"))           # a local file (JSONL, .jsonl.gz or Parquet)
    item = items["cpp/HumanEval_0_has_close_elements"]
    program = item.completion_program(completion)   # prompt + completion cut at the first stop token + "\\n" + tests

Rows are MultiPL-E's own (`name`, `language`, `prompt`, `tests`, `stop_tokens`; `doctests`, `original` and
`prompt_terminology` are read when present and not needed). A program passes when it exits 0, as MultiPL-E scores it;
Python items also get Crucible's early-exit guard (eval.checked).

Benchmark names: `multipl-e-SOURCE-LANG` (SOURCE humaneval or mbpp, LANG a MultiPL-E code from LANGUAGES), the Hub's
`nuprl/MultiPL-E` config `SOURCE-LANG`. A local file may mix sources and languages: `multipl-e` takes every row,
`multipl-e-SOURCE` and `multipl-e-SOURCE-LANG` the rows of that source (and language). Task ids are `LANG/name`
("cpp/HumanEval_0_has_close_elements"): the same problem in two languages is two tasks.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from eval.benchmarks import BenchmarkItem, describe, docstring_prose, hub_rows

PREFIX = "multipl-e"
HUB_DATASET = "nuprl/MultiPL-E"
HUB_SPLIT = "test"
SOURCES = {"humaneval": "HumanEval_", "mbpp": "mbpp_"}  # benchmark source -> the prefix of MultiPL-E's row names
# MultiPL-E's language code -> the sandbox's language name (sandbox_image/languages.py).
LANGUAGES = {"cpp": "cpp", "js": "javascript", "java": "java", "rs": "rust", "go": "go", "sh": "bash", "php": "php",
             "ts": "typescript", "py": "python"}
REQUIRED = ("name", "language", "prompt", "tests", "stop_tokens")
HASH_COMMENTS = ("bash", "python")  # languages whose comments start with '#'; the others use // and /* */


class MultiPLEError(ValueError):
    """A MultiPL-E file or benchmark name that cannot be used; the message is one line."""


@dataclass(frozen=True)
class MultiPLEItem(BenchmarkItem):
    """A MultiPL-E problem: `prompt` is the signature and doc comment in `language`, `test` the harness that follows
    the function; there is no canonical solution (`solution` is "")."""

    code: str = ""  # MultiPL-E's language code ("rs"); `language` is the sandbox's name for it ("rust")
    stop_tokens: tuple[str, ...] = ()

    def truncate(self, completion: str) -> str:
        """The completion up to the first stop token (all of it when none occurs), as MultiPL-E cuts it."""
        cut = min((at for at in (completion.find(t) for t in self.stop_tokens if t) if at >= 0),
                  default=len(completion))
        return completion[:cut]

    def check_program(self, code: str) -> str:
        """`code` (the prompt and its completion: the program before the tests) followed by the tests, as the sandbox
        runs it: MultiPL-E's program, adapted where the sandbox runs the language differently (`adapt`)."""
        return adapt(code + "\n" + self.test, self.language)

    def completion_program(self, completion: str) -> str:
        """MultiPL-E's program, prompt + the completion cut at its first stop token + "\\n" + tests, as the sandbox
        runs it."""
        return self.check_program(self.prompt + self.truncate(completion))


# -- MultiPL-E's programs as the sandbox runs them --------------------------------------------------------------------
GO_PACKAGE = re.compile(r"^package\s+\w+", re.M)
GO_TEST = re.compile(r"^func\s+(Test\w*)\s*\(\s*\w+\s+\*testing\.T\s*\)", re.M)
GO_MAIN = re.compile(r"^func\s+main\s*\(", re.M)
JAVATUPLES_IMPORT = re.compile(r"^[ \t]*import\s+org\.javatuples\.\*;[ \t]*\n?", re.M)
JAVATUPLES_USE = re.compile(r"\b(?:Unit|Pair|Triplet|Quartet|Quintet|Sextet|Septet|Octet|Ennead|Decade|KeyValue|"
                            r"LabelValue)\s*[<.(]")


def _go_main(program: str) -> str:
    """MultiPL-E's Go programs are `go test` files (package X_test, func TestX(t *testing.T)); the sandbox builds and
    runs a main package. So: package main, and a main that runs the tests with the testing package's own runner (exit
    status 1 when one fails, as `go test` exits)."""
    tests = GO_TEST.findall(program)
    if not tests or GO_MAIN.search(program):
        return program
    entries = ", ".join(f'{{Name: "{name}", F: {name}}}' for name in tests)
    return (GO_PACKAGE.sub("package main", program, count=1).rstrip("\n") + "\n\nfunc main() {\n"
            "\ttesting.Main(func(pattern, name string) (bool, error) { return true, nil },\n"
            f"\t\t[]testing.InternalTest{{{entries}}}, nil, nil)\n}}\n")


def _java_without_unused_javatuples(program: str) -> str:
    """MultiPL-E's Java prompts all import org.javatuples.*, which only the tuple-returning problems use, and the
    sandbox's Java has no javatuples on its class path: the import is dropped where nothing uses it."""
    return program if JAVATUPLES_USE.search(program) else JAVATUPLES_IMPORT.sub("", program)


ADAPTERS = {"go": _go_main, "java": _java_without_unused_javatuples}


def adapt(program: str, language: str) -> str:
    """MultiPL-E's program in `language` as the sandbox runs it; unchanged for languages that need nothing."""
    adapter = ADAPTERS.get(language)
    return adapter(program) if adapter else program


# -- benchmark names ------------------------------------------------------------------------------------------------
def is_multipl_e(name: str) -> bool:
    return name == PREFIX or name.startswith(PREFIX + "-")


def benchmark_names() -> str:
    """The accepted forms, for messages and help."""
    return (f"{PREFIX}-{{{','.join(SOURCES)}}}-LANG (LANG: {', '.join(sorted(LANGUAGES))}); with a local file also "
            f"{PREFIX} or {PREFIX}-{{{','.join(SOURCES)}}}")


def parse_name(name: str) -> tuple[str | None, str | None]:
    """(source, language code) of a benchmark name; None where the name leaves it open."""
    if not is_multipl_e(name):
        raise MultiPLEError(f"{name!r} is not a MultiPL-E benchmark: use {benchmark_names()}")
    parts = name[len(PREFIX) + 1:].split("-", 1) if name != PREFIX else []
    source = parts[0] if parts else None
    code = parts[1] if len(parts) > 1 else None
    if source is not None and source not in SOURCES:
        raise MultiPLEError(f"unknown MultiPL-E source {source!r} in {name!r}: use {benchmark_names()}")
    if code is not None and code not in LANGUAGES:
        raise MultiPLEError(f"unknown MultiPL-E language {code!r} in {name!r}: use {benchmark_names()}")
    return source, code


# -- one row --------------------------------------------------------------------------------------------------------
def source_of(name: str) -> str | None:
    return next((source for source, prefix in SOURCES.items() if name.startswith(prefix)), None)


def entry_point_of(name: str) -> str:
    """The original (Python) function name: "HumanEval_0_has_close_elements" -> "has_close_elements"."""
    parts = name.split("_", 2)
    return parts[2] if len(parts) == 3 and parts[1].isdigit() else name


def comment_text(prompt: str, language: str) -> str:
    """The text of the prompt's comments, one line per comment line, their markers removed."""
    lines, in_block = [], False
    for raw in prompt.splitlines():
        line = raw.strip()
        if language in HASH_COMMENTS:
            if line.startswith("#") and not line.startswith("#!"):
                lines.append(line.lstrip("#").strip())
            continue
        if in_block or line.startswith("/*"):
            in_block = "*/" not in line
            lines.append(line.replace("*/", "").lstrip("/*").strip())
        elif line.startswith("//"):
            lines.append(line.lstrip("/").strip())
    return "\n".join(lines)


def description_of(prompt: str, language: str, entry_point: str) -> str:
    """The problem in words: the doc comment's prose, without its examples (eval.benchmarks.describe)."""
    prose = ""
    if language == "python":
        try:
            prose = docstring_prose(prompt, entry_point)
        except SyntaxError:
            prose = ""
    return prose or describe(comment_text(prompt, language), entry_point)


def row_problem(row) -> str | None:
    """Why `row` is not a MultiPL-E row (one line), or None."""
    if not isinstance(row, dict):
        return "not an object with MultiPL-E's fields (name, language, prompt, tests, stop_tokens)"
    missing = [key for key in REQUIRED if key not in row]
    if missing:
        return f"no {', '.join(missing)} (MultiPL-E rows have {', '.join(REQUIRED)})"
    for key in ("name", "language", "prompt", "tests"):
        if not isinstance(row[key], str):
            return f"{key} must be a string, got {type(row[key]).__name__}"
    if row["language"] not in LANGUAGES:
        return (f"language {row['language']!r} is not a MultiPL-E language Crucible runs: use one of "
                f"{', '.join(sorted(LANGUAGES))}")
    stops = row["stop_tokens"]
    if isinstance(stops, str) or not all(isinstance(t, str) for t in stops or ()):
        return "stop_tokens must be a list of strings"
    return None


def item_of(row: dict) -> MultiPLEItem:
    """A checked row (row_problem is None) as an item."""
    name, code = row["name"], row["language"]
    language, entry = LANGUAGES[code], entry_point_of(name)
    prompt = row["prompt"]
    return MultiPLEItem(
        benchmark=f"{PREFIX}-{source_of(name) or 'other'}", task_id=f"{code}/{name}", prompt=prompt,
        description=description_of(prompt, language, entry) or prompt, solution="", test=row["tests"],
        entry_point=entry, language=language, code=code, stop_tokens=tuple(row["stop_tokens"] or ()),
    )


# -- loading --------------------------------------------------------------------------------------------------------
def _jsonl_rows(path: Path) -> Iterator[tuple[str, object]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                try:
                    yield f"{path}:{number}", json.loads(line)
                except json.JSONDecodeError as exc:
                    raise MultiPLEError(f"{path}:{number}: not valid JSON ({exc.msg} at column {exc.colno})") from exc


def _parquet_rows(path: Path) -> Iterator[tuple[str, object]]:
    import pyarrow.parquet as pq

    for number, row in enumerate(pq.read_table(path).to_pylist(), start=1):
        yield f"{path}: row {number}", row


def read_rows(path: Path) -> list[dict]:
    """Every row of a MultiPL-E file, checked; MultiPLEError naming the place and the problem otherwise."""
    path = Path(path)
    if not path.is_file():
        raise MultiPLEError(f"{path}: no such file; give MultiPL-E rows as JSONL (.jsonl, .jsonl.gz) or Parquet")
    rows = _parquet_rows(path) if path.suffix == ".parquet" else _jsonl_rows(path)
    checked = []
    try:
        for where, row in rows:
            problem = row_problem(row)
            if problem:
                raise MultiPLEError(f"{where}: {problem}")
            checked.append(row)
    except (OSError, EOFError, UnicodeDecodeError, ImportError) as exc:
        raise MultiPLEError(f"{path}: cannot read it ({exc}); give JSONL (.jsonl, .jsonl.gz) or Parquet") from exc
    if not checked:
        raise MultiPLEError(f"{path}: no rows in it")
    return checked


def _chosen(rows: Iterable[dict], source: str | None, code: str | None) -> list[dict]:
    return [row for row in rows
            if (source is None or source_of(row["name"]) == source) and (code is None or row["language"] == code)]


def items_by_id(rows: Iterable[dict], where: str) -> dict[str, MultiPLEItem]:
    items: dict[str, MultiPLEItem] = {}
    for row in rows:
        item = item_of(row)
        if item.task_id in items:
            raise MultiPLEError(f"{where}: {item.task_id} appears twice; each (language, name) once")
        items[item.task_id] = item
    return items


def load_file(name: str, path: Path) -> dict[str, MultiPLEItem]:
    """The rows of a local file that benchmark `name` selects, as task_id -> item in file order."""
    source, code = parse_name(name)
    rows = read_rows(path)
    chosen = _chosen(rows, source, code)
    if not chosen:
        found = sorted({f"{source_of(r['name']) or 'other'}-{r['language']}" for r in rows})
        raise MultiPLEError(f"{path} has no rows for {name} (it has {', '.join(found)})")
    return items_by_id(chosen, str(path))


def load_hub(name: str, timeout_s: float = 5.0) -> dict[str, MultiPLEItem]:
    """One MultiPL-E config from the Hub; {} with a one-line log when it cannot be reached."""
    source, code = parse_name(name)
    if source is None or code is None:
        raise MultiPLEError(f"{name} names no single Hub config: use {PREFIX}-SOURCE-LANG, or give a local file")
    rows = hub_rows(name, HUB_DATASET, HUB_SPLIT, config=f"{source}-{code}", timeout_s=timeout_s)
    if rows is None:
        return {}
    bad = next(((i, p) for i, p in enumerate(map(row_problem, rows)) if p), None)
    if bad:
        raise MultiPLEError(f"{HUB_DATASET} {source}-{code} row {bad[0]}: {bad[1]}")
    return items_by_id(rows, f"{HUB_DATASET} {source}-{code}")


def load_multipl_e(name: str, path: Path | None = None) -> dict[str, MultiPLEItem]:
    """Benchmark `name` from a local file when one is given, else from the Hub ({} when unreachable)."""
    return load_file(name, path) if path is not None else load_hub(name)

