"""library_instruct: problems that use a library installed in the sandbox's Python (numpy by default), written by
the questioner's phases from seeds of the library's own source (the built-in seed source `library:<package>`), then
answered in the AIEV dialogue loop (assets/generate/methods/derived.problems_then_dialogues).

    result = run(MethodInputs(seeds=rows), LibraryInstructConfig(), ctx, DialoguesConfig())

Every library must import inside the sandbox before anything is asked; a verified dialogue whose final code does not
import its library teaches nothing about it and is rejected (`solution_does_not_use_library`).
"""

from __future__ import annotations

import ast
import re
from collections import Counter

from assets.generate.config import DialoguesConfig
from assets.generate.methods import derived
from assets.generate.methods.base import MethodContext, MethodInputs, MethodResult
from assets.generate.methods.config import LibraryInstructConfig
from assets.generate.questioner import QuestionerTask
from assets.generate.seed_sources import LIBRARY_PREFIX
from assets.partitions import source_of

LIBRARY_METHOD = "library_instruct"
LIBRARY_MISSING = ("library_instruct needs {lib} inside the sandbox: apt-get install python3-{lib} (bubblewrap) — the "
                   "Docker image has numpy")
IMPORTABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def library_of(seed: dict, config: LibraryInstructConfig) -> str:
    """The library a seed's problem must use: the one its source `library:<name>` is, else the first configured."""
    source = source_of(seed.get("source") or "")
    return source[len(LIBRARY_PREFIX):] if source.startswith(LIBRARY_PREFIX) else config.libraries[0]


def require_libraries(libraries: list[str], ctx: MethodContext) -> None:
    """A one-line ValueError naming the first library that does not import inside the sandbox."""
    for lib in libraries:
        if not IMPORTABLE.fullmatch(lib):
            raise ValueError(f"library_instruct libraries: {lib!r} is not an importable top-level name (e.g. numpy)")
    programs = [{"id": f"import:{lib}", "code": f"import {lib}\n"} for lib in libraries]
    verdicts = ctx.runner.run(programs)
    failed = [p for p, v in zip(programs, verdicts) if not v.passed]
    if failed:  # a cached failure may predate the library's installation: ask the sandbox itself, uncached
        failed = [p for p, v in zip(failed, ctx.runner.pool.run_batch(failed)) if not v.passed]
    if failed:
        raise ValueError(LIBRARY_MISSING.format(lib=failed[0]["id"].split(":", 1)[1]))


def imports_library(code: str | None, library: str) -> bool:
    """Whether `code` imports `library` or one of its modules."""
    try:
        tree = ast.parse(code or "")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    modules = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    modules += [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
                and not node.level]
    return any(module.split(".")[0] == library for module in modules)


def keep_library_users(result: MethodResult, config: LibraryInstructConfig) -> None:
    """Move the rows whose final code does not import their library to the rejects."""
    kept = []
    for row in result.rows:
        library = library_of(row, config)
        if imports_library(row["solution"], library):
            kept.append(row)
            continue
        result.rejects.append({**row, "reason": "solution_does_not_use_library", "detail": library})
        result.counts["solution_does_not_use_library"] += 1
    result.rows = kept


def run(inputs: MethodInputs, config: LibraryInstructConfig, ctx: MethodContext,
                dialogues: DialoguesConfig) -> MethodResult:
    """Problems that import a library installed in the sandbox, from seeds of (usually) that library's own source,
    through the questioner's phases and the dialogue loop."""
    if not config.libraries:
        raise ValueError("library_instruct config libraries is empty: name at least one (numpy)")
    used = Counter(library_of(seed, config) for seed in inputs.seeds)
    require_libraries(list(dict.fromkeys([*config.libraries, *used])), ctx)
    task = QuestionerTask(LIBRARY_METHOD, "library_instruct",
                          variables=lambda seed: {"seed": seed["code"].rstrip(), "library": library_of(seed, config)})
    result = derived.problems_then_dialogues(inputs.seeds, task, config, dialogues, ctx)
    keep_library_users(result, config)
    result.extra["libraries"] = dict(sorted(used.items()))
    return result
