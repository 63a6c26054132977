"""An instant teacher for measuring the pipeline itself: an OpenAI-compatible responder whose replies cost nothing,
so that a run's time is all Crucible's (sandbox, embeddings, dedup, decontamination, storage).

Its replies are valid and varied, the way a good teacher's are, so every stage does its real work on every row:
- questioner: one of several problem families (polynomials, digit sums, list filters, string rotations, ranges),
  named after the seed's function and with constants drawn from a hash of the seed, and with the seed's own docstring
  in the statement, so no two problems read alike; a correct reference and 4-5 asserts computed here;
- programmer: the reference, except that every third problem first gets an off-by-one answer that fails, so the
  feedback turn and the revision run too;
- feedback roles: a short hint; the decontamination solver: a plain function.

    from benchmarks.stub_teacher import StubTeacher    # StubState(responder=StubTeacher()) in tests/openai_stub_server
"""

from __future__ import annotations

import hashlib
import re
import threading

F = "```"


def _digits(n: int) -> int:
    return sum(int(c) for c in str(abs(n)))


# family -> (signature, statement, body template, arguments of the checks, the function itself for expected values)
FAMILIES = {
    "poly": ("x", "returns {a}*x*x + {b}*x + {c} for an integer `x`",
             "    return {a} * x * x + {b} * x + {c}\n", [(0,), (1,), (-3,), (7,), (12,)],
             lambda k: lambda x: k["a"] * x * x + k["b"] * x + k["c"]),
    "digits": ("n", "returns the sum of the decimal digits of `abs(n)`, multiplied by {a}",
               "    return {a} * sum(int(c) for c in str(abs(n)))\n", [(0,), (9,), (-123,), (4051,), (99999,)],
               lambda k: lambda n: k["a"] * _digits(n)),
    "filter": ("items", "returns the items of the list `items` that are divisible by {a}, in their order",
               "    return [i for i in items if i % {a} == 0]\n",
               [([],), ([1, 2, 3, 4, 5, 6, 7, 8, 9, 10],), ([0, -4, 12, 15, 21],), (list(range(30, 50)),)],
               lambda k: lambda items: [i for i in items if i % k["a"] == 0]),
    "rotate": ("s", "returns the string `s` rotated left by {a} places (by {a} modulo the length; '' stays '')",
               "    if not s:\n        return s\n    k = {a} % len(s)\n    return s[k:] + s[:k]\n",
               [("",), ("abc",), ("rotation",), ("x",), ("hello world",)],
               lambda k: lambda s: s[k["a"] % len(s):] + s[:k["a"] % len(s)] if s else s),
    "span": ("values", "returns the difference between the largest and the smallest of `values` plus {c}, "
                       "or {c} for an empty list",
             "    if not values:\n        return {c}\n    return max(values) - min(values) + {c}\n",
             [([],), ([5],), ([3, -2, 8],), ([10, 10, 10],), ([-7, 40, 2, 19],)],
             lambda k: lambda values: (max(values) - min(values) + k["c"]) if values else k["c"]),
}


def _constants(text: str) -> dict:
    digest = hashlib.sha256(text.encode()).digest()
    return {"a": 2 + digest[0] % 7, "b": digest[1] % 11 - 5, "c": digest[2] % 13, "pick": digest[3]}


def _docstring_sentence(seed: str) -> str:
    match = re.search(r'"""\s*(.+?)(?:\.\s|\n\n|""")', seed, re.S)
    sentence = " ".join(match.group(1).split()) if match else "works on plain values"
    return sentence[:200]


class StubTeacher:
    """responder(messages) -> reply text; thread-safe (the stub server answers requests concurrently)."""

    def __init__(self, wrong_every: int = 3) -> None:
        self.wrong_every = wrong_every
        self.lock = threading.Lock()
        self.problems: dict[str, tuple[str, dict, int]] = {}  # function name -> (family, constants, index)
        self.calls = {"questioner": 0, "programmer": 0, "feedback": 0, "solver": 0, "other": 0}

    def _count(self, role: str) -> None:
        with self.lock:
            self.calls[role] += 1

    def _problem(self, seed: str) -> tuple[str, str, str, str]:
        k = _constants(seed)
        family = list(FAMILIES)[k["pick"] % len(FAMILIES)]
        signature, statement, body, cases, impl = FAMILIES[family]
        base = re.search(r"def (\w+)", seed)
        name = f"{(base.group(1) if base else 'task').strip('_') or 'task'}_{family}"
        with self.lock:
            self.problems.setdefault(name, (family, k, len(self.problems)))
        func = impl(k)
        solution = f"def {name}({signature}):\n{body.format(**k)}"
        tests = "\n".join(f"assert {name}({', '.join(map(repr, args))}) == {func(*args)!r}" for args in cases)
        problem = (f"Write a function `{name}({signature})` that {statement.format(**k)}. "
                   f"The idea comes from a library function that {_docstring_sentence(seed)}.")
        return name, problem, solution, tests

    def __call__(self, messages: list[dict]) -> str:
        system = messages[0]["content"] if messages[0]["role"] == "system" else ""
        if system.startswith("You write programming exercises"):
            self._count("questioner")
            seed = [m for m in messages if m["role"] == "user" and m["content"].startswith("Snippet:")][-1]["content"]
            _, problem, solution, tests = self._problem(seed)
            return (f"### Problem\n{problem}\n\n### Solution\n{F}python\n{solution}{F}\n\n"
                    f"### Tests\n{F}python\n{tests}\n{F}\n")
        if system.startswith("You are an expert Python programmer"):
            self._count("programmer")
            found = re.search(r"`(\w+)\(", messages[1]["content"])
            known = self.problems.get(found.group(1)) if found else None
            if known is None:
                return "I cannot tell which function is asked for."
            family, k, index = known
            signature, _, body, _, _ = FAMILIES[family]
            answered = sum(m["role"] == "assistant" for m in messages)
            code = body.format(**k)
            if answered == 0 and index % self.wrong_every == 0:
                code = code.replace("return ", "return 1 + ", 1) if family != "filter" else code.replace(
                    "== 0", "== 1")
            return (f"I follow the statement step by step.\n\n{F}python\ndef {found.group(1)}({signature}):\n"
                    f"{code}{F}\nIt runs in linear time.")
        if system.startswith(("You review Python code", "You are the person who asked")):
            self._count("feedback")
            return "The failing check shows the result is off by one; look at what the return adds."
        if system.startswith("You are a careful Python programmer"):
            self._count("solver")
            return f"{F}python\ndef solve(*args):\n    return None\n{F}"
        self._count("other")
        return "I do not understand the request."
