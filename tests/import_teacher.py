"""A scripted teacher for the import tests: it writes tests for the imported solutions (the oss_tests prompt), corrects
them when shown a failing run (import_tests_repair prompt), and answers anything else (decontamination's solver) with
a function that matches no benchmark. Served by tests/openai_stub_server.py.

By the function the reference solution defines:
    parse_duration, ordinal, running_max   right tests                                -> verified
    initials          one miscalculated expected value, corrected after the failing run -> verified
    sum_of_squares    right tests; the imported solution is wrong (cubes)                -> fails_after_repair
    has_close_elements  right tests (a HumanEval problem: decontamination removes it)
"""

from __future__ import annotations

import re

F = "```"
TESTS = {
    "parse_duration": ["assert parse_duration('1h30m') == 5400", "assert parse_duration('45s') == 45",
                       "assert parse_duration('2m5s') == 125", "assert parse_duration('') == 0"],
    "ordinal": ["assert ordinal(1) == '1st'", "assert ordinal(12) == '12th'", "assert ordinal(23) == '23rd'",
                "assert ordinal(111) == '111th'"],
    "running_max": ["assert running_max([1, 3, 2]) == [1, 3, 3]", "assert running_max([]) == []",
                    "assert running_max([5, 4]) == [5, 5]", "assert running_max((2, 9)) == [2, 9]"],
    "initials": ["assert initials('ada lovelace') == 'A.L.'", "assert initials('Guido') == 'G.'",
                 "assert initials('a b c') == 'A.B.C.'", "assert initials('') == ''"],
    "sum_of_squares": ["assert sum_of_squares([1, 2, 3]) == 14", "assert sum_of_squares([]) == 0",
                       "assert sum_of_squares([2]) == 4", "assert sum_of_squares([-1, 1]) == 2"],
    "has_close_elements": ["assert has_close_elements([1.0, 2.0, 3.0], 0.5) is False",
                           "assert has_close_elements([1.0, 2.8, 3.0, 4.0, 5.0, 2.0], 0.3) is True",
                           "assert has_close_elements([], 1.0) is False",
                           "assert has_close_elements([1.0, 1.05], 0.1) is True"],
}
FIRST_TRY_WRONG = {"initials": "assert initials('ada lovelace') == 'AL'"}  # replaces the first assert once


def _tests(lines: list[str]) -> str:
    return f"### Tests\n{F}python\n" + "\n".join(lines) + f"\n{F}\n"


class ImportTeacher:
    def __init__(self) -> None:
        self.asked: dict[str, int] = {}  # function -> test replies written
        self.solver_calls = 0

    def __call__(self, messages: list[dict]) -> str:
        exercise = next((m["content"] for m in reversed(messages) if m["role"] == "user" and "Reference solution:" in
                         m["content"] and "Exercise:" in m["content"]), None)  # the last: the prompt's example first
        if exercise is None:  # decontamination's solver: a function no benchmark's tests pass
            self.solver_calls += 1
            return f"{F}python\ndef solve(*args):\n    return 'crucible-import-test'\n{F}"
        names = re.findall(r"def (\w+)\(", exercise.split("Reference solution:")[-1])
        name = next((n for n in names if n in TESTS), names[0] if names else "f")
        lines = list(TESTS.get(name, [f"assert {name} is not None"] * 4))
        count = self.asked[name] = self.asked.get(name, 0) + 1
        if count == 1 and name in FIRST_TRY_WRONG:
            lines[0] = FIRST_TRY_WRONG[name]
        return _tests(lines)
