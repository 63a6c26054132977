"""A scripted model (and simulated user) for the evaluation-mode tests, served by tests/openai_stub_server.py.

Each task's behaviour is fixed by its function name, so every mode's expected score is known:

    has_close_elements        wrong at first (visible example fails); the canonical body after any feedback
    separate_paren_groups     a syntax error at first; canonical after feedback
    truncate_number           canonical at once
    below_zero                hard-codes the visible examples: passes them, fails the hidden tests
    mean_absolute_deviation   always wrong
    (MBPP tasks)              `return None` at first; canonical after feedback

Every request is recorded whole (`requests`), so a test can prove what the model and the user were never shown.
"""

import re
import threading

from eval.visible_tests import visible_prompt

USER_SYSTEM = "You are the person who asked for this code"
ADVICE = "I tried my examples and the answers are wrong; look at how you compare the numbers."
LEAKED_CODE = "print('code the simulated user must not pass on')"


def fenced(code: str) -> str:
    return f"Here is my solution.\n\n```python\n{code.rstrip()}\n```\n\nIt handles the examples."


class ScriptedEvalModel:
    def __init__(self, items) -> None:
        self.items = list(items)
        self.lock = threading.Lock()
        self.requests: list[list[dict]] = []
        self.user_calls = 0

    def _item(self, messages):
        first_user = next(m["content"] for m in messages if m["role"] == "user")
        return next(it for it in self.items if visible_prompt(it).strip() in first_user)

    def __call__(self, messages: list[dict]) -> str:
        with self.lock:
            self.requests.append([dict(m) for m in messages])
        if messages[0]["role"] == "system" and messages[0]["content"].startswith(USER_SYSTEM):
            with self.lock:
                self.user_calls += 1
            return f"{ADVICE}\n```python\n{LEAKED_CODE}\n```\nThat should do it."
        item = self._item(messages)
        revised = any(m["role"] == "assistant" for m in messages)
        canonical = fenced(item.solution)
        name = item.entry_point
        if item.benchmark == "mbpp":
            return canonical if revised else fenced(f"def {name}(*args):\n    return None\n")
        if name in ("has_close_elements", "separate_paren_groups") and not revised:
            broken = {"has_close_elements": "def has_close_elements(numbers, threshold):\n    return False\n",
                      "separate_paren_groups": "def separate_paren_groups(paren_string):\n    return [\n"}
            return fenced(broken[name])
        if name == "below_zero":
            return fenced("def below_zero(operations):\n    return operations == [1, 2, -4, 5]\n")
        if name == "mean_absolute_deviation":
            return fenced("def mean_absolute_deviation(numbers):\n    return 0.0\n")
        return canonical

    def sent_text(self) -> str:
        """Every message content of every request, joined."""
        return "\n".join(m["content"] for request in self.requests for m in request)

    def model_requests(self) -> list[list[dict]]:
        return [r for r in self.requests if not r[0]["content"].startswith(USER_SYSTEM)]


def function_of(request: list[dict]) -> str:
    return re.search(r"Write a Python function `(\w+)`", request[1]["content"]).group(1)
