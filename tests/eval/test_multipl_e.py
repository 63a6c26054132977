"""MultiPL-E (eval/multipl_e.py, eval/multipl_e_score.py): rows in MultiPL-E's format read from a local file, stop
tokens, the programs as the sandbox runs them, per-language pass@k in the real bwrap sandbox, the CLI, and the Hub
loader failing soft offline.

The fixtures (tests/data/multipl_e/) are hand-written problems in MultiPL-E's row format, not MultiPL-E's data: three
problems (two "HumanEval_", one "mbpp_") in C++, JavaScript and Bash, two in Rust, Go and Java, one in TypeScript, PHP
and Python; the samples file has a correct and a wrong completion of each (its "fixture" field says which). Most
correct completions run on past their stop token into code that would break the program, so they pass only when cut
where MultiPL-E cuts.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

import cli
from eval import multipl_e_score
from eval.multipl_e import (
    LANGUAGES,
    MultiPLEError,
    MultiPLEItem,
    adapt,
    load_multipl_e,
    parse_name,
    read_rows,
)
from eval.multipl_e_score import score_file, score_samples, summarize_multipl_e
from eval.pass_at_k import pass_at_k
from eval.samples import read_samples
from eval.scoring import sandbox_runner
from tests.conftest import require_bwrap

DATA = Path(__file__).resolve().parents[1] / "data" / "multipl_e"
ROWS, SAMPLES = DATA / "rows.jsonl", DATA / "samples.jsonl"
CRUCIBLE = [str(Path(sys.executable).parent / "crucible")]
FIXTURE_LANGUAGES = {"cpp", "javascript", "rust", "go", "java", "bash", "typescript", "php", "python"}


def rows() -> list[dict]:
    return [json.loads(line) for line in ROWS.read_text().splitlines()]


def fixtures() -> dict[tuple[str, int], str]:
    """(task_id, index among that task's samples) -> "correct" or "wrong"."""
    seen: dict[str, int] = {}
    out = {}
    for line in SAMPLES.read_text().splitlines():
        row = json.loads(line)
        index = seen.get(row["task_id"], 0)
        seen[row["task_id"]] = index + 1
        out[(row["task_id"], index)] = row["fixture"]
    return out


def write_jsonl(path: Path, rows_: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows_))
    return path


def run_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "CRUCIBLE_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1"}
    return subprocess.run(CRUCIBLE + ["eval", "score", *args], capture_output=True, text=True, timeout=600, env=env)


# -- loading --------------------------------------------------------------------------------------------------------
def test_a_local_jsonl_file_loads_every_row_as_an_item():
    items = load_multipl_e("multipl-e", ROWS)
    assert len(items) == 18 and {it.language for it in items.values()} == FIXTURE_LANGUAGES
    cpp = items["cpp/HumanEval_1001_sum_of_squares"]
    assert isinstance(cpp, MultiPLEItem)
    assert (cpp.benchmark, cpp.language, cpp.code, cpp.entry_point) == ("multipl-e-humaneval", "cpp", "cpp",
                                                                         "sum_of_squares")
    assert cpp.stop_tokens == ("\n}",) and cpp.solution == "" and cpp.test.startswith("}\nint main()")
    assert items["sh/mbpp_1003_max_of_three"].benchmark == "multipl-e-mbpp"
    assert {it.language for it in items.values() if it.code == "rs"} == {"rust"}


def test_descriptions_are_the_doc_comments_prose():
    items = load_multipl_e("multipl-e", ROWS)
    for task_id, item in items.items():
        assert ">>>" not in item.description and "{" not in item.description, task_id  # no examples, no signature
        assert f"{item.entry_point}(" not in item.description, task_id
        assert not item.description.startswith(("//", "#", "/*")), task_id
    assert items["cpp/HumanEval_1001_sum_of_squares"].description == (
        "Return the sum of the squares of the integers in the vector.")
    assert items["java/HumanEval_1002_count_vowels"].description.startswith("Count the lower-case vowels")
    assert items["sh/mbpp_1003_max_of_three"].description == (
        "Write a function that returns the largest of three integers. $1 is an integer $2 is an integer $3 is an "
        "integer")
    assert items["py/HumanEval_1001_sum_of_squares"].description == (
        "Return the sum of the squares of the integers in the list.")


def test_a_parquet_file_loads_the_same_items(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "rows.parquet"
    pq.write_table(pa.Table.from_pylist(rows()), path)
    assert load_multipl_e("multipl-e", path) == load_multipl_e("multipl-e", ROWS)


@pytest.mark.parametrize("name, ids", [
    ("multipl-e-humaneval-cpp", ["cpp/HumanEval_1001_sum_of_squares", "cpp/HumanEval_1002_count_vowels"]),
    ("multipl-e-mbpp", ["cpp/mbpp_1003_max_of_three", "js/mbpp_1003_max_of_three", "sh/mbpp_1003_max_of_three"]),
    ("multipl-e-humaneval-py", ["py/HumanEval_1001_sum_of_squares"]),
])
def test_a_name_selects_rows_of_the_file(name, ids):
    assert list(load_multipl_e(name, ROWS)) == ids


def test_a_name_the_file_has_no_rows_for_says_what_it_has():
    with pytest.raises(MultiPLEError, match=r"has no rows for multipl-e-mbpp-rs \(it has humaneval-cpp, "):
        load_multipl_e("multipl-e-mbpp-rs", ROWS)


@pytest.mark.parametrize("name, expected", [
    ("multipl-e", (None, None)), ("multipl-e-mbpp", ("mbpp", None)), ("multipl-e-humaneval-rs", ("humaneval", "rs")),
])
def test_parse_name(name, expected):
    assert parse_name(name) == expected


@pytest.mark.parametrize("name, message", [
    ("multipl-e-humaneval-cobol", "unknown MultiPL-E language 'cobol'"),
    ("multipl-e-apps-cpp", "unknown MultiPL-E source 'apps'"),
    ("humaneval", "is not a MultiPL-E benchmark"),
])
def test_bad_names_are_named(name, message):
    with pytest.raises(MultiPLEError, match=message):
        parse_name(name)


def test_an_unknown_language_in_the_file_is_a_one_line_error_naming_it(tmp_path):
    bad = rows()
    bad[3] = {**bad[3], "language": "cobol"}
    path = write_jsonl(tmp_path / "rows.jsonl", bad)
    with pytest.raises(MultiPLEError) as raised:
        read_rows(path)
    message = str(raised.value)
    assert "\n" not in message and message.startswith(f"{path}:4: language 'cobol' is not a MultiPL-E language")
    assert "cpp, go, java, js, php, py, rs, sh, ts" in message


@pytest.mark.parametrize("change, message", [
    (lambda r: {k: v for k, v in r.items() if k != "stop_tokens"}, "no stop_tokens"),
    (lambda r: {**r, "stop_tokens": "\n}"}, "stop_tokens must be a list of strings"),
    (lambda r: {**r, "tests": 3}, "tests must be a string, got int"),
])
def test_a_malformed_row_names_line_and_field(tmp_path, change, message):
    path = write_jsonl(tmp_path / "rows.jsonl", [rows()[0], change(rows()[1])])
    with pytest.raises(MultiPLEError, match=f"rows.jsonl:2: {message}"):
        read_rows(path)


def test_the_same_task_twice_is_refused(tmp_path):
    path = write_jsonl(tmp_path / "rows.jsonl", [rows()[0], rows()[0]])
    with pytest.raises(MultiPLEError, match="cpp/HumanEval_1001_sum_of_squares appears twice"):
        load_multipl_e("multipl-e", path)


# -- the Hub, offline -----------------------------------------------------------------------------------------------
def test_the_hub_offline_is_skipped_with_a_one_line_log(monkeypatch, caplog):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with caplog.at_level(logging.INFO, logger="eval.benchmarks"):
        assert load_multipl_e("multipl-e-humaneval-cpp") == {}
    assert caplog.messages == ["skipping benchmark multipl-e-humaneval-cpp (nuprl/MultiPL-E humaneval-cpp): "
                               "HF_HUB_OFFLINE is set"]


def test_the_hub_unreachable_is_skipped_with_a_one_line_log(monkeypatch, caplog):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)

    def unreachable(*args, **kwargs):
        raise OSError("Name or service not known\nmore detail")

    monkeypatch.setattr("huggingface_hub.HfApi.dataset_info", unreachable)
    with caplog.at_level(logging.WARNING, logger="eval.benchmarks"):
        assert load_multipl_e("multipl-e-mbpp-rs") == {}
    assert caplog.messages == ["skipping benchmark multipl-e-mbpp-rs (nuprl/MultiPL-E mbpp-rs): cannot load it: "
                               "Name or service not known"]


def test_scoring_without_the_hub_or_a_file_says_to_give_a_file(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ValueError, match="could not be loaded from the Hub .*--benchmark-file"):
        score_file("multipl-e-humaneval-cpp", SAMPLES, runner=None)


def test_the_hub_needs_one_config():
    with pytest.raises(MultiPLEError, match="names no single Hub config"):
        load_multipl_e("multipl-e-humaneval")


# -- stop tokens and programs ---------------------------------------------------------------------------------------
def item(code="cpp", stops=("\n}",), prompt="long f(long x) {\n", test="}\nint main() {}\n") -> MultiPLEItem:
    return MultiPLEItem(benchmark="multipl-e-humaneval", task_id=f"{code}/HumanEval_9_f", prompt=prompt,
                        description="", solution="", test=test, entry_point="f", language=LANGUAGES[code], code=code,
                        stop_tokens=stops)


@pytest.mark.parametrize("stops, completion, expected", [
    (("\n}",), "    return x;\n}\nint g() {}\n", "    return x;"),
    (("\nfunction ", "\n/*", "\n//"), "  return 1;\n}\n// note\nfunction g() {}\n", "  return 1;\n}"),  # the earliest
    (("\n}",), "    return x;", "    return x;"),  # no stop token: all of it
    (("", "\n}"), "a\n}b", "a"),  # an empty stop token cuts nothing
    ((), "a\n}b", "a\n}b"),
])
def test_truncate_cuts_at_the_first_stop_token(stops, completion, expected):
    assert item(stops=stops).truncate(completion) == expected


def test_the_program_is_prompt_completion_newline_tests():
    it = item()
    assert it.completion_program("    return x;\n}\nint main() { return 1; }\n") == (
        "long f(long x) {\n    return x;\n}\nint main() {}\n")
    real = load_multipl_e("multipl-e", ROWS)["rs/HumanEval_1001_sum_of_squares"]
    completion = "    numbers.iter().map(|n| n * n).sum()\n}\n\nfn main() {}\n"
    assert real.completion_program(completion) == (real.prompt + "    numbers.iter().map(|n| n * n).sum()" + "\n"
                                                   + real.test)


def test_go_test_files_become_main_programs():
    go = load_multipl_e("multipl-e", ROWS)["go/HumanEval_1002_count_vowels"]
    program = go.completion_program("\treturn 0\n}\n")
    assert go.prompt.startswith("package count_vowels_test\n") and program.startswith("package main\n")
    assert program.endswith('\t\t[]testing.InternalTest{{Name: "TestCountVowels", F: TestCountVowels}}, nil, nil)\n}\n')
    assert adapt(program, "go") == program  # a program with a main is left alone
    assert adapt("package x_test\n", "go") == "package x_test\n"  # no tests: nothing to run them from


def test_java_drops_the_javatuples_import_only_where_nothing_uses_it():
    java = load_multipl_e("multipl-e", ROWS)["java/HumanEval_1001_sum_of_squares"]
    program = java.completion_program("        return 0;\n    }\n")
    assert "import org.javatuples.*;" in java.prompt and "javatuples" not in program
    assert program.startswith("import java.util.*;\nimport java.util.stream.*;\nclass Problem {\n")
    tuple_using = ("import org.javatuples.*;\nclass Problem {\n"
                   "    static Pair<Long, Long> f() { return Pair.with(1l, 2l); }\n")
    assert adapt(tuple_using, "java") == tuple_using


# -- scoring in the sandbox ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def runner():
    require_bwrap()
    with sandbox_runner("bwrap", workers=2, cache=False) as r:
        yield r


@pytest.mark.slow
def test_correct_completions_pass_and_wrong_ones_fail_in_every_language(runner):
    items = load_multipl_e("multipl-e", ROWS)
    samples = read_samples(SAMPLES, items, "multipl-e")
    scored = score_samples(samples, items, runner)
    expected = fixtures()
    wrong = [(s.task_id, s.status, s.result[:300]) for s in scored
             if (s.status == "passed") != (expected[(s.task_id, s.index)] == "correct")]
    assert not wrong
    assert all(s.status == "failed" for s in scored if expected[(s.task_id, s.index)] == "wrong")
    result = {(s.task_id, s.index): s.result for s in scored}
    assert result[("go/HumanEval_1001_sum_of_squares", 1)].endswith("case 2: got -4, want 16")  # from stdout
    assert result[("sh/HumanEval_1001_sum_of_squares", 1)] == "failed: exit status 1"  # nothing said at all
    assert "at Problem.main(Main.java:" in result[("java/HumanEval_1001_sum_of_squares", 1)]  # an assert, not javac
    how = {s.task_id: s.how for s in scored if expected[(s.task_id, s.index)] == "correct"}
    assert how["cpp/HumanEval_1001_sum_of_squares"] == how["js/HumanEval_1001_sum_of_squares"] == "truncated"
    assert how["js/HumanEval_1002_count_vowels"] == "completion"  # ends at its "}": JS's stop tokens are not in it

    report = summarize_multipl_e(scored, items, ks=(1, 2))
    # Each task: 2 samples, 1 passing -> pass@1 = 0.5 and pass@2 = 1.0, the estimator's own numbers.
    assert pass_at_k([2], [1], (1, 2)) == {"pass@1": 0.5, "pass@2": 1.0}
    assert report["pass@1"] == 0.5 and report["pass@2"] == 1.0 and report["tasks_scored"] == 18
    assert set(report["per_language"]) == FIXTURE_LANGUAGES
    tasks = {"cpp": 3, "javascript": 3, "bash": 3, "rust": 2, "go": 2, "java": 2, "typescript": 1, "php": 1,
             "python": 1}
    for language, figures in report["per_language"].items():
        assert (figures["pass@1"], figures["pass@2"]) == (0.5, 1.0), language
        assert figures["tasks_scored"] == tasks[language] and figures["n_samples"] == 2 * tasks[language]
        assert figures["statuses"] == {"passed": tasks[language], "failed": tasks[language]}
    assert set(report["per_benchmark"]) == {"multipl-e-humaneval", "multipl-e-mbpp"}
    mbpp = report["per_benchmark"]["multipl-e-mbpp"]
    assert mbpp["tasks_scored"] == 3 and set(mbpp["per_language"]) == {"cpp", "javascript", "bash"}
    assert "unsupported" not in report


def test_per_language_pass_at_k_uses_the_estimator(runner, tmp_path):
    """Three bash samples of one task (two correct), one wrong C++ sample: pass@1 = 2/3 and 0 by language."""
    items = load_multipl_e("multipl-e", ROWS)
    by_task = {}
    for line in SAMPLES.read_text().splitlines():
        row = json.loads(line)
        by_task.setdefault((row["task_id"], row["fixture"]), row["completion"])
    sh, cpp = "sh/HumanEval_1002_count_vowels", "cpp/mbpp_1003_max_of_three"
    path = write_jsonl(tmp_path / "samples.jsonl", [
        {"task_id": sh, "completion": by_task[(sh, "correct")]}, {"task_id": sh, "completion": by_task[(sh, "wrong")]},
        {"task_id": sh, "solution": items[sh].prompt + items[sh].truncate(by_task[(sh, "correct")])},
        {"task_id": cpp, "completion": by_task[(cpp, "wrong")]}])
    scored = score_samples(read_samples(path, items, "multipl-e"), items, runner)
    assert [s.status for s in scored] == ["passed", "failed", "passed", "failed"]
    assert [s.how for s in scored] == ["truncated", "truncated", "solution", "truncated"]
    report = summarize_multipl_e(scored, items, ks=(1, 3))
    assert report["per_language"]["bash"]["pass@1"] == pytest.approx(2 / 3)
    assert report["per_language"]["bash"]["pass@3"] == 1.0
    assert report["per_language"]["cpp"]["pass@1"] == 0.0 and "pass@3" not in report["per_language"]["cpp"]
    assert report["pass@1"] == pytest.approx((2 / 3 + 0) / 2) and "pass@3" not in report
    assert report["tasks_in_benchmark"] == 18 and report["note"].startswith("16 of 18 benchmark tasks have no samples")


def test_a_language_the_sandbox_cannot_run_is_reported_unsupported_not_crashed(runner, monkeypatch, tmp_path):
    ts = {"name": "HumanEval_1001_sum_of_squares", "language": "ts",
          "prompt": "//Return the sum of the squares.\nfunction sum_of_squares(numbers: number[]): number {\n",
          "tests": "\ndeclare var require: any;\nconst assert = require('node:assert');\n"
                   "assert.deepEqual(sum_of_squares([1, 2]), 5);\n",
          "stop_tokens": ["\nfunction ", "\n/*", "\n//", "\nconsole.log"]}
    sh = next(r for r in rows() if r["language"] == "sh")
    path = write_jsonl(tmp_path / "rows.jsonl", [ts, sh])
    items = load_multipl_e("multipl-e", path)
    # typescript as a machine without tsc has it (the toolchain check is the sandbox's own, sandbox_image/languages.py)
    languages = dict(multipl_e_score.LANGUAGES)
    languages["typescript"] = dataclasses.replace(languages["typescript"], tool="/nonexistent/tsc")
    monkeypatch.setattr(multipl_e_score, "LANGUAGES", languages)
    samples = write_jsonl(tmp_path / "samples.jsonl", [
        {"task_id": "ts/HumanEval_1001_sum_of_squares", "completion": "  return 0;\n}\n"},
        {"task_id": f"sh/{sh['name']}", "completion": "    echo 0\n}\n"}])
    scored = score_samples(read_samples(samples, items, "multipl-e"), items, runner)
    assert [s.status for s in scored] == ["unsupported", "failed"]
    assert "needs /nonexistent/tsc, which is not installed" in scored[0].result
    report = summarize_multipl_e(scored, items)
    assert report["unsupported"]["typescript"]["samples"] == 1 and report["unsupported"]["typescript"]["tasks"] == 1
    assert "node-typescript" in report["unsupported"]["typescript"]["reason"]
    assert set(report["per_language"]) == {"bash"} and report["pass@1"] == 0.0 and report["tasks_in_benchmark"] == 1


# -- the command line -----------------------------------------------------------------------------------------------
def test_the_cli_prints_per_language_figures(tmp_path):
    out = tmp_path / "scored.jsonl"
    result = run_cli(tmp_path, "--benchmark", "multipl-e-mbpp", "--benchmark-file", str(ROWS), "--samples",
                     str(SAMPLES.parent / "samples.jsonl"), "--k", "1,2", "--output", str(out), "--workers", "2")
    assert result.returncode == 2 and "is not a multipl-e-mbpp task" in result.stderr  # humaneval samples in it
    mbpp = [json.loads(line) for line in SAMPLES.read_text().splitlines() if "/mbpp_" in line]
    samples = write_jsonl(tmp_path / "mbpp.jsonl", mbpp)
    result = run_cli(tmp_path, "--benchmark", "multipl-e-mbpp", "--benchmark-file", str(ROWS), "--samples",
                     str(samples), "--k", "1,2", "--output", str(out), "--workers", "2")
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.strip().splitlines()) == 1
    report = json.loads(result.stdout)
    assert list(report)[:2] == ["benchmark", "pass@1"] and report["benchmark"] == "multipl-e-mbpp"
    assert report["pass@1"] == 0.5 and report["pass@2"] == 1.0
    assert {lang: (f["pass@1"], f["pass@2"]) for lang, f in report["per_language"].items()} == {
        "bash": (0.5, 1.0), "cpp": (0.5, 1.0), "javascript": (0.5, 1.0)}
    assert report["per_benchmark"]["multipl-e-mbpp"]["pass@1"] == 0.5
    manifest = report["manifest"]
    assert manifest["languages"] == ["bash", "cpp", "javascript"] and manifest["benchmark_file"] == str(ROWS)
    assert manifest["programs_executed"] == 6
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["passed"] for r in written] == [r["fixture"] == "correct" for r in mbpp]
    assert all(r["solution"].startswith(next(it["prompt"] for it in rows() if f"{it['language']}/{it['name']}"
                                             == r["task_id"])) for r in written)


def test_the_cli_refuses_bad_input_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CRUCIBLE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    bad = rows()
    bad[0] = {**bad[0], "language": "cobol"}
    path = write_jsonl(tmp_path / "rows.jsonl", bad)
    for args, message in [
        (["--benchmark", "multipl-e", "--benchmark-file", str(path)], "language 'cobol' is not a MultiPL-E language"),
        (["--benchmark", "multipl-e-humaneval-cobol"], "unknown MultiPL-E language 'cobol'"),
        (["--benchmark", "humaneval", "--benchmark-file", str(ROWS)], "--benchmark-file is for MultiPL-E"),
        (["--benchmark", "multipl-e-humaneval-cpp"], "could not be loaded from the Hub"),
    ]:
        try:
            code = cli.main(["eval", "score", *args, "--samples", str(SAMPLES)])
        except SystemExit as exit_:  # argparse refuses a bad --benchmark itself
            code = exit_.code
        captured = capsys.readouterr()
        lines = captured.err.strip().splitlines()
        assert code == 2 and message in lines[-1] and captured.out == "", (args, captured.err)
        assert len(lines) == 1 or lines[0].startswith("usage: "), (args, captured.err)
