"""A scripted teacher for the generation tests: deterministic replies for the questioner, the programmer and the
feedback roles, served by tests/openai_stub_server.py as an OpenAI-compatible endpoint.

Each new seed gets the next scenario of SCENARIOS (seeds arrive in seed_id order and the client sends one request
at a time), and the scenario fixes everything that happens to it:

    good        valid problem; the programmer's first answer passes
    revise      valid problem; the first answer fails, the revision after feedback passes
    repair      the first reference fails its own tests; the questioner's repair passes; first answer passes
    malformed   the reply has no Tests section                         -> problem reject no_tests_code
    weak_tests  the tests also pass on `return None`                   -> problem reject tests_pass_trivial_solution
    unsolvable  valid problem; every answer fails                      -> dialogue reject unsolved_after_max_turns
    wrong_expected  every reply miscalculates the expected values; the reference is right -> tests taken from the
                reference's outputs; the programmer's first answer agrees  -> verified at turn 1
    unconfirmed every reply has a wrong reference and right tests -> tests taken from the reference's outputs; the
                programmer's first answer disagrees    -> dialogue reject reference_outputs_unconfirmed
"""

from __future__ import annotations

import re
import threading

SCENARIOS = ("good", "revise", "repair", "malformed", "weak_tests", "unsolvable", "wrong_expected", "unconfirmed")
FEEDBACK = "The sums are wrong: check that you add the offset, and that you add rather than subtract."


def _problem(name: str, offset: int) -> str:
    return (f"Write a function `{name}(a: int, b: int) -> int` that returns the sum of `a` and `b` plus {offset}. "
            "It must work for negative numbers too.")


def _solution(name: str, offset: int, wrong: bool = False) -> str:
    op = "-" if wrong else "+"
    return f"def {name}(a, b):\n    return a {op} b + {offset}\n"


def _tests(name: str, offset: int, expected_shift: int = 0) -> str:
    cases = [(1, 2), (0, 0), (-5, 3), (10, 10)]
    return "\n".join(f"assert {name}({a}, {b}) == {a + b + offset + expected_shift}" for a, b in cases)


def _reply(problem: str, solution: str, tests: str | None) -> str:
    text = f"### Problem\n{problem}\n\n### Solution\n```python\n{solution}```\n"
    if tests is not None:
        text += f"\n### Tests\n```python\n{tests}\n```\n"
    return text


class ScriptedTeacher:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.scenario_of_seed: dict[str, str] = {}
        self.scenario_of_function: dict[str, str] = {}
        self.calls: dict[str, int] = {"questioner": 0, "repair": 0, "programmer": 0, "feedback": 0}
        self.feedback_systems: set[str] = set()  # the first sentence of each feedback prompt seen

    def _assign(self, seed_text: str) -> tuple[str, str, int]:
        with self.lock:
            if seed_text not in self.scenario_of_seed:
                self.scenario_of_seed[seed_text] = SCENARIOS[len(self.scenario_of_seed) % len(SCENARIOS)]
            index = list(self.scenario_of_seed).index(seed_text)
        scenario = self.scenario_of_seed[seed_text]
        name = f"add_{scenario}_{index}"
        self.scenario_of_function[name] = scenario
        return scenario, name, index + 1

    def __call__(self, messages: list[dict]) -> str:
        system = messages[0]["content"] if messages[0]["role"] == "system" else ""
        last = messages[-1]["content"]
        if system.startswith("You write programming exercises"):
            # The seed is the last user turn of the first request; repairs append turns after it.
            seed_turns = [m for m in messages if m["role"] == "user" and m["content"].startswith("Snippet:")]
            scenario, name, offset = self._assign(seed_turns[-1]["content"])
            if scenario == "wrong_expected":  # first reply and repairs alike
                return _reply(_problem(name, offset), _solution(name, offset), _tests(name, offset, 1))
            if scenario == "unconfirmed":
                return _reply(_problem(name, offset), _solution(name, offset, wrong=True), _tests(name, offset))
            if last.startswith("Execution result:"):
                self.calls["repair"] += 1
                return _reply(_problem(name, offset), _solution(name, offset), _tests(name, offset))
            self.calls["questioner"] += 1
            if scenario == "malformed":
                return _reply(_problem(name, offset), _solution(name, offset), None)
            if scenario == "weak_tests":
                return _reply(_problem(name, offset), _solution(name, offset),
                              "\n".join(f"assert {name}({i}, {i}) is None or True" for i in range(4)))
            shift = 1 if scenario == "repair" else 0  # a miscalculated expected value
            return _reply(_problem(name, offset), _solution(name, offset), _tests(name, offset, shift))
        if system.startswith("You are an expert Python programmer"):
            self.calls["programmer"] += 1
            name = re.search(r"`(\w+)\(", messages[1]["content"]).group(1)
            offset = int(re.search(r"plus (\d+)", messages[1]["content"]).group(1))
            scenario = self.scenario_of_function.get(name, "good")
            answered = sum(m["role"] == "assistant" for m in messages)
            wrong = scenario == "unsolvable" or (scenario == "revise" and answered == 0)
            return (f"I add the two numbers and the offset.\n\n```python\n{_solution(name, offset, wrong)}```\n"
                    "This runs in constant time.")
        if system.startswith(("You review Python code", "You are the person who asked")):
            self.calls["feedback"] += 1
            self.feedback_systems.add(system.split(".")[0])
            return FEEDBACK
        return "I do not understand the request."
