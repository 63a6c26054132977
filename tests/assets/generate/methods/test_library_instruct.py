"""library_instruct (assets/generate/methods/oss_instruct.py run_library): the built-in `library:numpy` seed source
read by the seed_snippets asset, a numpy problem written by a scripted teacher and verified in the real sandbox (where
numpy is installed), and the one-line error for a library the sandbox cannot import."""

from __future__ import annotations

import hashlib
import re

import dagster as dg
import pytest

from assets.generate.config import DialoguesConfig
from assets.generate.methods.base import MethodInputs
from assets.generate.methods.config import LibraryInstructConfig
from assets.generate.methods.library_instruct import LIBRARY_MISSING, imports_library, library_of
from assets.generate.methods.library_instruct import run as run_library
from assets.generate.seed_extract import seed_id
from assets.generate.seeds import seed_snippets
from assets.keys import SEED_SNIPPETS
from assets.partitions import add_seed_source
from assets.schemas import DIALOGUE_REJECTS, DIALOGUES, SEEDS, frame, schema_problems
from resources.store import ParquetIOManager, read_table

LIBRARY_SYSTEM = "You write Python exercises that practise"
PROGRAMMER_SYSTEM = "You are an expert Python programmer"
SEED_CODE = '''def _column_sums(a):
    """Sum every column of a 2-D array."""
    a = asanyarray(a)
    return a.sum(axis=0)
'''


def numpy_solution(name: str) -> str:
    return (f"import numpy as np\n\n\ndef {name}(rows):\n    if not rows:\n        return []\n"
            "    return np.asarray(rows, dtype=np.int64).sum(axis=0).tolist()")


def numpy_reply(name: str) -> str:
    tests = "\n".join([f"assert {name}([[1, 2], [3, 4]]) == [4, 6]", f"assert {name}([[5, -1, 0]]) == [5, -1, 0]",
                       f"assert {name}([]) == []", f"assert {name}([[1], [2], [3]]) == [6]"])
    return (f"### Problem\nWrite a function `{name}(rows: list[list[int]]) -> list[int]` that uses numpy to return "
            "the sum of every column as a list of Python ints; an empty input gives an empty list.\n\n"
            f"### Solution\n```python\n{numpy_solution(name)}\n```\n\n### Tests\n```python\n{tests}\n```\n")


def plain_solution(name: str) -> str:
    return f"def {name}(rows):\n    return [sum(column) for column in zip(*rows)]"


class Responder:
    """The questioner writes a numpy problem per seed (named after the seed); the programmer answers it right, with
    numpy, except for seeds from `plain.py`, answered right in plain Python."""

    def __init__(self) -> None:
        self.questions: list[list[dict]] = []
        self.plain: set[str] = set()

    def __call__(self, messages: list[dict]) -> str:
        system = messages[0]["content"]
        if system.startswith(LIBRARY_SYSTEM):
            self.questions.append(messages)
            tag = hashlib.sha256(messages[-1]["content"].encode()).hexdigest()[:6]
            if "plain.py" in messages[-1]["content"]:
                self.plain.add(f"column_totals_{tag}")
            return numpy_reply(f"column_totals_{tag}")
        if system.startswith(PROGRAMMER_SYSTEM):
            name = re.search(r"`(\w+)\(", messages[1]["content"]).group(1)
            code = plain_solution(name) if name in self.plain else numpy_solution(name)
            return f"Sum the columns.\n\n```python\n{code}\n```"
        raise AssertionError(f"unexpected request: {system[:60]!r}")


def seed_row(source: str, path: str) -> dict:
    code = f"{SEED_CODE}# from {source} {path}\n"  # seeds differ, and so do their problems
    return {"seed_id": seed_id(code), "source": source, "path": path, "license": "BSD-3-Clause", "language": "python",
            "kind": "function", "symbol": "_column_sums", "code": code, "n_lines": 5}


def test_seed_snippets_reads_the_library_source(tmp_path, monkeypatch):
    monkeypatch.setenv("CRUCIBLE_HOME", str(tmp_path / "home"))
    instance = dg.DagsterInstance.ephemeral()
    add_seed_source(instance, "library:numpy")
    result = dg.materialize([seed_snippets], partition_key="library:numpy", instance=instance,
                            run_config={"ops": {"seed_snippets": {"config": {"max_files": 10, "max_seeds": 5}}}},
                            resources={"io_manager": ParquetIOManager()})
    assert result.success
    seeds = read_table(SEED_SNIPPETS, ["library:numpy"])
    assert not schema_problems(seeds, SEEDS)
    assert 1 <= len(seeds) <= 5
    assert set(seeds["source"]) == {"library:numpy"} and set(seeds["license"]) == {"BSD-3-Clause"}
    assert all(path.endswith(".py") and not path.startswith("/") for path in seeds["path"])


def test_run_library_keeps_a_numpy_problem_verified_in_the_sandbox(method_context):
    seeds = [seed_row("library:numpy", "lib/_shape_base.py"), seed_row("stdlib", "statistics.py"),
             seed_row("library:numpy", "plain.py")]
    responder = Responder()
    with method_context(responder, source="library:numpy") as (ctx, _):
        result = run_library(MethodInputs(seeds=seeds), LibraryInstructConfig(fresh_attempts=0), ctx,
                             DialoguesConfig())
    frame(result.rows, DIALOGUES)
    frame(result.rejects, DIALOGUE_REJECTS)
    # The plain-Python answer passes its tests but shows nothing of numpy: rejected.
    assert result.counts == {"solution_does_not_use_library": 1}
    (plain,) = result.rejects
    assert plain["path"] == "plain.py" and plain["detail"] == "numpy" and plain["passed_turn"] == 1
    assert len(result.rows) == 2
    for row in result.rows:
        assert row["method"] == "library_instruct" and row["passed_turn"] == 1
        assert row["solution"].startswith("import numpy as np") and row["verdicts"][-1]["status"] == "passed"
        assert row["tests_source"] == "questioner" and "library_instruct.v1@" in row["prompt_version"]
    assert {r["source"] for r in result.rows} == {"library:numpy", "stdlib"}
    # Both seeds, the stdlib one included (the first configured library), asked for numpy with the seed's code.
    assert len(responder.questions) == 3
    for question in responder.questions:
        assert question[-1]["content"].startswith("Library: numpy\n") and SEED_CODE.strip() in question[-1]["content"]
    assert result.extra["libraries"] == {"numpy": 3}


@pytest.mark.parametrize("code, uses", [
    ("import numpy as np\nx = np.zeros(2)", True),
    ("from numpy.linalg import norm", True),
    ("def f():\n    import numpy\n    return numpy.ones(1)", True),
    ("import numpyish", False),
    ("from . import numpy", False),
    ("# import numpy\nx = 1", False),
    ("def broken(:", False),
    (None, False),
])
def test_imports_library(code, uses):
    assert imports_library(code, "numpy") is uses


def test_library_of_a_seed():
    config = LibraryInstructConfig(libraries=["numpy", "scipy"])
    assert library_of({"source": "library:scipy"}, config) == "scipy"
    assert library_of({"source": "library:scipy~20261123"}, config) == "scipy"
    assert library_of({"source": "stdlib"}, config) == "numpy"


@pytest.mark.parametrize("libraries, source, missing", [
    (["crucible_absent_lib"], "stdlib", "crucible_absent_lib"),
    (["numpy"], "library:crucible_absent_lib", "crucible_absent_lib"),  # a seed's own library is checked too
])
def test_a_library_missing_in_the_sandbox_is_one_line(method_context, libraries, source, missing):
    def never(messages):
        raise AssertionError("no teacher request before the libraries are checked")

    with method_context(never) as (ctx, state):
        with pytest.raises(ValueError) as info:
            run_library(MethodInputs(seeds=[seed_row(source, "x.py")]), LibraryInstructConfig(libraries=libraries),
                        ctx, DialoguesConfig())
        assert state.total_requests == 0
    assert str(info.value) == LIBRARY_MISSING.format(lib=missing)
    assert "\n" not in str(info.value) and f"apt-get install python3-{missing}" in str(info.value)


def test_a_library_name_that_is_not_importable_is_refused(method_context):
    with method_context(lambda messages: "") as (ctx, _):
        with pytest.raises(ValueError, match="not an importable top-level name"):
            run_library(MethodInputs(seeds=[seed_row("stdlib", "x.py")]),
                        LibraryInstructConfig(libraries=["numpy; import os"]), ctx, DialoguesConfig())
