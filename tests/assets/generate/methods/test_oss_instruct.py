"""oss_instruct (assets/generate/methods/oss_instruct.py): windows drawn from source files, a problem and solution in
one request, tests in a second one, sandbox runs with a repair shown the real execution output, the gates, and every
reject reason. The teacher is a scripted responder; the sandbox is the real one.

The responder reads the scenario from the window (`<scenario>_total = ...`) and keeps it in the function's name
(`triple_<scenario>_<tag>`), so the tests request and the repair, which see only the problem, answer consistently:

    good        right solution, right tests                       -> kept at the first run
    repair      the first solution doubles; the repair fixes it   -> kept after one repair
    broken      the solution doubles, and still does after repair -> fails_after_repair
    weak        tests that pass on `return None`                  -> tests_pass_trivial_solution
    nosolution  a problem without a solution                      -> no_solution_code
    fewasserts  two asserts; told so (format repair), four        -> kept
    untested    asserts that never call the function, twice       -> tests_do_not_call_solution
    dup         two windows, one problem                          -> one row, one duplicate_problem
"""

from __future__ import annotations

import hashlib
import re
import textwrap
from collections import Counter

import pytest

from assets.generate.methods.base import MethodInputs, answer_text, dialogue_id
from assets.generate.methods.config import OssInstructConfig
from assets.generate.methods.oss_instruct import METHOD, draw_windows, run
from assets.generate.questioner import problem_id
from assets.generate.replies import count_asserts
from assets.generate.seed_extract import seed_id
from assets.generate.seed_sources import SourceSpec
from assets.schemas import DIALOGUE_REJECTS, DIALOGUES, frame

PROBLEM_SYSTEM = "You invent Python coding problems"
TESTS_SYSTEM = "You write unit tests"
WINDOW = re.compile(r"Code lines:\n```python\n(.*?)\n```", re.S)


def window_code(scenario: str, n: int = 0) -> str:
    return f"{scenario}_total = sum(weight * {scenario}_value for weight in weights)  # part {n}"


def window_seed(scenario: str, n: int = 0) -> dict:
    code = window_code(scenario, n)
    return {"seed_id": seed_id(code), "source": "tree", "path": f"pkg/{scenario}.py", "license": "MIT",
            "language": "python", "kind": "window", "symbol": "L3-3", "code": code, "n_lines": 1}


def problem_text(name: str) -> str:
    return f"Write a function `{name}(x: int) -> int` that returns three times `x`."


def solution_text(name: str, factor: int = 3) -> str:
    return f"def {name}(x):\n    return {factor} * x"


def written_tests(name: str, scenario: str, fixed: bool = False) -> str:
    if scenario == "fewasserts" and not fixed:
        return f"assert {name}(1) == 3\nassert {name}(0) == 0"
    if scenario == "weak":
        return "\n".join(f"assert {name}({i}) is None or True" for i in range(4))
    if scenario == "untested":
        return "\n".join(f"assert 3 * {i} == {3 * i}" for i in range(4))
    return "\n".join(f"assert {name}({x}) == {3 * x}" for x in (1, 0, -2, 5))


def section(title: str, body: str, code: bool = True) -> str:
    return f"### {title}\n" + (f"```python\n{body}\n```\n" if code else f"{body}\n")


class Responder:
    """The scripted teacher; `requests` keeps (kind, messages) of every request in order."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, list[dict]]] = []
        self.tests_written: dict[str, str] = {}  # function name -> the tests of the tests request

    def __call__(self, messages: list[dict]) -> str:
        system, last = messages[0]["content"], messages[-1]["content"]
        if system.startswith(PROBLEM_SYSTEM):
            self.requests.append(("problem", messages))
            window = WINDOW.findall(last)[-1]
            found = re.match(r"(\w+?)_total =", window)
            scenario = found.group(1) if found else "good"
            tag = "same" if scenario == "dup" else hashlib.sha256(window.encode()).hexdigest()[:6]
            name = f"triple_{scenario}_{tag}"
            if scenario == "nosolution":
                return section("Problem", problem_text(name), code=False) + "\nI am not sure how to solve it."
            factor = 2 if scenario in ("repair", "broken") else 3
            return section("Problem", problem_text(name), code=False) + "\n" + section("Solution",
                                                                                      solution_text(name, factor))
        if system.startswith(TESTS_SYSTEM):
            exercise = [m["content"] for m in messages if m["role"] == "user" and m["content"].startswith("Exercise:")]
            name = re.search(r"`(triple_\w+)\(", exercise[-1]).group(1)
            scenario = name.split("_")[1]
            if last.startswith("Execution result:"):
                self.requests.append(("repair", messages))
                factor = 3 if scenario == "repair" else 2
                return (section("Problem", problem_text(name), code=False) + "\n"
                        + section("Solution", solution_text(name, factor)) + "\n"
                        + section("Tests", written_tests(name, scenario)))
            if last.startswith("Your reply cannot be used yet"):
                self.requests.append(("format_repair", messages))
                return (section("Problem", problem_text(name), code=False) + "\n"
                        + section("Solution", solution_text(name)) + "\n"
                        + section("Tests", written_tests(name, scenario, fixed=True)))
            self.requests.append(("tests", messages))
            self.tests_written[name] = written_tests(name, scenario)
            return section("Tests", self.tests_written[name])
        raise AssertionError(f"unexpected request: {system[:60]!r}")

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.requests]


def generate(method_context, seeds, config=OssInstructConfig(), source="tree"):
    responder = Responder()
    with method_context(responder, source=source) as (ctx, state):
        result = run(MethodInputs(seeds=seeds), config, ctx)
        assert state.total_requests == len(responder.requests)
    # Both tables take the rows as they are.
    frame(result.rows, DIALOGUES)
    frame(result.rejects, DIALOGUE_REJECTS)
    return result, responder, ctx


def test_a_window_becomes_a_single_turn_row(method_context):
    seed = window_seed("good")
    result, responder, ctx = generate(method_context, [seed])
    assert responder.kinds() == ["problem", "tests"]
    assert not result.rejects and not result.counts
    (row,) = result.rows
    name = f"triple_good_{hashlib.sha256(seed['code'].encode()).hexdigest()[:6]}"
    # Magicoder's shape: the problem, then the solution as one python block.
    assert row["messages"] == [{"role": "user", "content": problem_text(name)},
                               {"role": "assistant", "content": f"```python\n{solution_text(name)}\n```"}]
    assert row["messages"][1]["content"] == answer_text(row["solution"])
    assert row["task_messages"] == [row["messages"][0]]
    # The tests are the second request's, asked in a fresh conversation that holds the problem and the solution.
    assert row["tests"] == responder.tests_written[name]
    tests_request = responder.requests[1][1]
    assert tests_request[0]["content"].startswith("You write unit tests")
    assert problem_text(name) in tests_request[-1]["content"] and solution_text(name) in tests_request[-1]["content"]
    assert not any(seed["code"] in m["content"] for m in tests_request)
    assert [(v["turn"], v["status"]) for v in row["verdicts"]] == [(1, "passed"), (0, "failed"), (0, "passed")]
    assert row["verdicts"][0]["backend"] == "bwrap"
    assert (row["method"], row["parent_id"], row["turns"], row["passed_turn"]) == (METHOD, None, 1, 1)
    assert (row["tests_source"], row["feedback_mode"]) == ("questioner", None)
    assert {k: row[k] for k in ("seed_id", "source", "path", "license")} == {
        k: seed[k] for k in ("seed_id", "source", "path", "license")}
    assert row["problem_id"] == problem_id(row["instruction"], row["tests"])
    assert row["dialogue_id"] == dialogue_id(METHOD, row["problem_id"], row["config_fingerprint"])
    assert row["teacher_model"] == row["programmer_model"] == "scripted"
    assert [v.split(".v1@")[0] for v in row["prompt_version"].split("+")] == ["oss_window", "oss_tests",
                                                                               "problem_repair", "format_repair"]
    assert (ctx.home.configs / f"{row['config_fingerprint']}.json").is_file()
    assert result.extra["windows"] == 1 and result.extra["window_lines"] == {1: 1}


def test_a_failing_solution_is_repaired_with_the_execution_output(method_context):
    result, responder, _ = generate(method_context, [window_seed("repair")])
    assert responder.kinds() == ["problem", "tests", "repair"]
    repair = responder.requests[2][1]
    # The repair continues the tests conversation and shows what the sandbox really printed: the failing assert and
    # the value the doubling solution returned.
    assert repair[:len(responder.requests[1][1])] == responder.requests[1][1]
    shown = repair[-1]["content"]
    assert "AssertionError" in shown and re.search(r"assert triple_repair_\w+\(1\) == 3\s+got: 2", shown)
    (row,) = result.rows
    assert "return 3 * x" in row["solution"] and "return 3 * x" in row["messages"][1]["content"]
    assert [(v["turn"], v["status"]) for v in row["verdicts"]] == [(1, "failed"), (2, "passed"), (0, "failed"),
                                                                   (0, "passed")]
    assert result.extra["kept_after_repair"] == 1


def test_every_drop_is_a_counted_reject(method_context):
    seeds = [window_seed(s) for s in ("good", "broken", "weak", "nosolution", "untested", "fewasserts")]
    seeds += [window_seed("dup", 1), window_seed("dup", 2)]
    result, responder, _ = generate(method_context, seeds)
    assert result.counts == Counter({"fails_after_repair": 1, "tests_pass_trivial_solution": 1,
                                     "no_solution_code": 1, "tests_do_not_call_solution": 1, "duplicate_problem": 1})
    assert sorted(r["instruction"].split("`")[1].split("_")[1] for r in result.rows) == ["dup", "fewasserts",
                                                                                          "good"]
    reasons = {r["path"]: r["reason"] for r in result.rejects}
    assert reasons == {"pkg/broken.py": "fails_after_repair", "pkg/weak.py": "tests_pass_trivial_solution",
                       "pkg/nosolution.py": "no_solution_code", "pkg/untested.py": "tests_do_not_call_solution",
                       "pkg/dup.py": "duplicate_problem"}
    by_reason = {r["reason"]: r for r in result.rejects}
    broken = by_reason["fails_after_repair"]
    assert [v["status"] for v in broken["verdicts"]] == ["failed", "failed"] and broken["passed_turn"] is None
    assert broken["messages"][-2]["content"].startswith("Execution result:")  # the exchange, repair included
    weak = by_reason["tests_pass_trivial_solution"]
    assert [(v["turn"], v["status"]) for v in weak["verdicts"]] == [(1, "passed"), (0, "passed"), (0, "passed")]
    nosolution = by_reason["no_solution_code"]
    assert nosolution["solution"] is None and nosolution["tests"] is None and not nosolution["verdicts"]
    dup_row = next(r for r in result.rows if "_dup_" in r["instruction"])
    assert by_reason["duplicate_problem"]["detail"] == dup_row["seed_id"]
    # Tests that break the rules are sent back once, told what is wrong; the second try decides.
    untested = by_reason["tests_do_not_call_solution"]
    assert untested["detail"] == "repair" and untested["messages"][-2]["content"].startswith(
        "Your reply cannot be used yet: the tests never call the function")
    few = next(r for r in result.rows if "_fewasserts_" in r["instruction"])
    assert count_asserts(few["tests"]) == 4 and [v["status"] for v in few["verdicts"]] == ["passed", "failed",
                                                                                             "passed"]
    # Nothing is asked for a window without a solution past the first request; only the broken one is repaired.
    assert Counter(responder.kinds()) == Counter({"problem": 8, "tests": 7, "format_repair": 2, "repair": 1})
    assert result.prompt_tokens > 0 and result.completion_tokens > 0


def test_without_repairs_a_failing_solution_is_rejected_at_once(method_context):
    seeds = [window_seed("repair"), window_seed("fewasserts")]
    result, responder, _ = generate(method_context, seeds, OssInstructConfig(repair_turns=0, format_repair=False))
    assert responder.kinds() == ["problem", "problem", "tests", "tests"]
    assert result.counts == Counter({"fails_after_repair": 1, "too_few_asserts": 1}) and not result.rows


def numbered_lines(count: int) -> str:
    return "".join(f"total_{i:02d} = combine(total_{i - 1:02d}, weights[{i}], offsets[{i}])\n" for i in range(count))


def function_seed(path: str, code: str, source: str = "tree") -> dict:
    return {"seed_id": seed_id(code), "source": source, "path": path, "license": "MIT", "language": "python",
            "kind": "function", "symbol": "f", "code": code, "n_lines": code.count("\n") + 1}


@pytest.mark.parametrize("max_lines", [1, 4, 15])
def test_windows_are_seeded_bounded_and_drawn_once_per_file(tmp_path, max_lines):
    text = numbered_lines(40)
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg/mod.py").write_text(text)
    spec = SourceSpec("tree", "local", path=str(tmp_path), license="MIT")
    seeds = [function_seed("pkg/mod.py", "def f():\n    return 1\n"), function_seed("pkg/mod.py", "def g(): pass")]
    config = OssInstructConfig(max_window_lines=max_lines, windows_per_file=3)
    first, again = draw_windows(seeds, config, spec), draw_windows(seeds, config, spec)
    assert first == again
    assert len(first.windows) + sum(first.skipped.values()) == 3  # one file, read once, three windows
    assert first.windows and first.seeds_without_file == 0
    file_lines = text.splitlines()
    for window in first.windows:
        assert 1 <= window.lines <= max_lines
        lines = window.code.splitlines()
        start = file_lines.index(lines[0])
        assert file_lines[start:start + len(lines)] == lines  # consecutive lines of the file
        assert window.seed_id == seed_id(window.code) and window.path == "pkg/mod.py" and window.license == "MIT"
    other = draw_windows(seeds, config.model_copy(update={"seed": 7}), spec)
    assert [w.code for w in other.windows] != [w.code for w in first.windows]


def test_windows_skip_comments_and_fall_back_to_the_seed_code():
    comments = window_seed("good") | {"code": "# a comment that is long enough to pass the size check\n#  and more"}
    function = textwrap.dedent(numbered_lines(20))
    draw = draw_windows([comments, function_seed("pkg/gone.py", function)], OssInstructConfig(windows_per_file=2),
                        spec=None)
    assert draw.skipped["comment_only"] == 1 and draw.seeds_without_file == 1
    assert draw.windows and all(w.code in function for w in draw.windows)


def test_run_draws_windows_from_the_registered_source(method_context, tmp_path):
    """A function seed's whole file, read through the home's source registry, is where the windows come from."""
    tree = tmp_path / "tree"
    (tree / "pkg").mkdir(parents=True)
    text = numbered_lines(30)
    (tree / "pkg/mod.py").write_text(text)
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    (home / "sources.yaml").write_text(f"sources:\n  tree: {{kind: local, path: {tree}, license: MIT}}\n")
    seeds = [function_seed("pkg/mod.py", "def f():\n    return 1\n")]
    result, responder, _ = generate(method_context, seeds, OssInstructConfig(windows_per_file=2, max_window_lines=5))
    asked = [WINDOW.findall(m[-1]["content"])[-1] for kind, m in responder.requests if kind == "problem"]
    assert len(asked) == result.extra["windows"] >= 1 and result.extra["seeds_without_file"] == 0
    assert all(w in text and w not in seeds[0]["code"] for w in asked)
    assert sorted(r["seed_id"] for r in result.rows) == sorted(seed_id(w) for w in asked)
    assert all((r["source"], r["path"], r["license"]) == ("tree", "pkg/mod.py", "MIT") for r in result.rows)
