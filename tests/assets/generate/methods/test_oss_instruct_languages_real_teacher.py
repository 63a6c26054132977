"""oss_instruct with the real bundled teacher (Qwen2.5-Coder-1.5B on llama.cpp) in C++, JavaScript and Rust: windows of
the hand-written seed files in tests/data/seed_code/ become verified rows in each language, with the real prompts,
program assembly, compilers and gates.

What the 1.5B manages is measured by benchmarks/generation_languages.py (10 windows per language; benchmarks/README.md).
This test guards the machinery, not that yield: it takes, per language, one window on which the teacher succeeds (the
nth window of a file, as oss_instruct draws them with its default seed), so that a change that breaks a language (a
prompt, the assembly of a program, a gate) fails here. Each window gets a fresh teacher server: llama.cpp reuses the
previous prompt's cache, and its answers then depend on what it was asked before (the same request was answered
differently after other windows' requests); from a fresh start, a window's requests are answered the same every run
on the same build. `python -m tests.assets.generate.methods.test_oss_instruct_languages_real_teacher LANG...` tries a
language's windows in order, the way the test runs them, and names the first one kept (FIRST_WINDOW=K starts at the
K-th draw, ONLY_FILES=a.cpp,b.js limits the files). On 2026-12-03 it found, with no repair turn: Rust parsing.rs #1
after 2 failing windows; C++ integers.cpp #0 after 5 failing windows of the other two files (whose functions lean on
a struct the window does not show, or on string mutation); JavaScript numbers.js #1 after 3 failing windows."""

from __future__ import annotations

from pathlib import Path

import pytest

from assets.generate.methods.base import MethodContext, MethodInputs
from assets.generate.methods.config import OssInstructConfig
from assets.generate.methods.oss_instruct import run, window_config
from assets.generate.seed_extract import extract_windows, seed_id
from resources.bundled_models import DEFAULT_MODEL, resolve_model
from resources.home import Home
from resources.llm import TeacherLLM
from resources.llm_server import LocalTeacherServer
from resources.sandbox import Sandbox

SEED_CODE = Path(__file__).resolve().parents[3] / "data" / "seed_code"
# No repair turn: a window the teacher gets right at once is all this test needs, and a failing one costs two
# requests instead of four (the repair path is covered by the scripted tests in every language).
CONFIG = OssInstructConfig(repair_turns=0)
# language -> (seed file, index of the window among the file's draws) that the measurement kept.
KEPT_WINDOWS = {"cpp": ("integers.cpp", 0), "javascript": ("numbers.js", 1), "rust": ("parsing.rs", 1)}


def window_seed(language: str, name: str, index: int) -> dict:
    draws = extract_windows((SEED_CODE / language / name).read_text(),
                            name, window_config(OssInstructConfig(windows_per_file=index + 1)))
    symbol, code = draws[index]
    return {"seed_id": seed_id(code), "source": f"seedcode-{language}", "path": name, "license": "MIT",
            "language": language, "kind": "window", "symbol": symbol, "code": code, "n_lines": code.count("\n") + 1}


def generate_window(language: str, name: str, index: int, model, home: Home, sandbox: Sandbox):
    """oss_instruct on one window, with a teacher server of its own: llama-cpp-python's, the server KEPT_WINDOWS were
    found with. llama-server (the default engine since 2026-12-03) answers the same greedy requests with other
    tokens (its batched kernels round differently): with it the JavaScript and Rust windows here failed their tests
    after the repair turn (2026-12-03, the C++ one was kept); rerun find_windows
    with CRUCIBLE_TEACHER_ENGINE=llama-server to move this test onto it."""
    with LocalTeacherServer(model.path, engine="python") as server:
        client = TeacherLLM(base_url=server.base_url, model=model.name, home=str(home.root)).client()
        ctx = MethodContext(client, client, sandbox.runner(), home, f"seedcode-{language}")
        return run(MethodInputs(seeds=[window_seed(language, name, index)]), CONFIG.model_copy(update={
            "language": language}), ctx)


@pytest.mark.slow
@pytest.mark.timeout(3000)
def test_bundled_teacher_writes_verified_rows_in_cpp_javascript_and_rust(bundled_teacher_home):
    model, home = bundled_teacher_home
    sandbox = Sandbox(workers=2, home=str(home.root))
    try:
        results = {language: generate_window(language, *KEPT_WINDOWS[language], model, home, sandbox)
                   for language in KEPT_WINDOWS}
    finally:
        sandbox.close()
    shown = {lang: (len(r.rows), dict(r.counts)) for lang, r in results.items()}
    print(shown)  # shown with -s / on failure: what the teacher managed in each language
    for language, result in results.items():
        assert len(result.rows) == 1, shown
        row = result.rows[0]
        assert row["language"] == language and row["messages"][1]["content"].startswith(f"```{language}\n")
        statuses = [v["status"] for v in row["verdicts"]]
        assert statuses[-2:] == ["failed", "passed"], statuses  # the throwing mutant fails, the rerun passes
        assert all(v["backend"] == "bwrap" for v in row["verdicts"])


def find_windows(languages: list[str], first: int = 0, tries: int = 6) -> None:
    """Print, per language, the first window of its seed files (in file order, then draw order) that this test's way
    of running keeps."""
    import os
    import tempfile

    model = resolve_model(DEFAULT_MODEL, Home.from_env().root)
    home = Home.from_env(tempfile.mkdtemp(prefix="crucible-find-windows-"))
    sandbox = Sandbox(workers=2, home=str(home.root))
    try:
        for language in languages:
            for index in range(first, tries):
                for path in sorted((SEED_CODE / language).iterdir()):
                    if os.environ.get("ONLY_FILES") and path.name not in os.environ["ONLY_FILES"].split(","):
                        continue
                    result = generate_window(language, path.name, index, model, home, sandbox)
                    print(language, path.name, index, len(result.rows), dict(result.counts), flush=True)
                    if result.rows:
                        break
                else:
                    continue
                break
    finally:
        sandbox.close()


if __name__ == "__main__":
    import os
    import sys

    find_windows(sys.argv[1:] or list(KEPT_WINDOWS), int(os.environ.get("FIRST_WINDOW", "0")))
