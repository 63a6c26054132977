"""The code of an imported answer: fenced blocks, the language each is in, and the solution to verify.

    found = extract_solution(messages, lang_hint="python")
    found.language, found.code, found.blocks      # "python", the solution's code (None: prose only), blocks seen

Published answers carry prose around one or several fenced blocks (the solution, an example call, its output, a shell
command to install something). The language is the fence's tag, else the dataset's own `lang` column, else Python when
the block parses as Python. A Python solution is every parseable block of the answer that defines a function or a
class, in order (an answer often splits helpers and the main function over blocks); without one, the longest
parseable block. Another language's solution is its longest block.
"""

from __future__ import annotations

from dataclasses import dataclass

from assets.generate.config import PYTHON
from assets.generate.replies import code_blocks, defined_functions, parses

# Fence tags and `lang` values -> one name per language (MultiPL-E's and Magicoder's names where they agree).
ALIASES = {
    "python": PYTHON, "py": PYTHON, "python3": PYTHON, "py3": PYTHON,
    "cpp": "cpp", "c++": "cpp", "cc": "cpp", "cxx": "cpp", "hpp": "cpp",
    "c": "c", "h": "c",
    "java": "java",
    "javascript": "javascript", "js": "javascript", "node": "javascript", "jsx": "javascript",
    "typescript": "typescript", "ts": "typescript", "tsx": "typescript",
    "rust": "rust", "rs": "rust",
    "go": "go", "golang": "go",
    "bash": "bash", "sh": "bash", "shell": "bash", "zsh": "bash",
    "php": "php", "swift": "swift", "kotlin": "kotlin", "kt": "kotlin", "scala": "scala", "ruby": "ruby", "rb": "ruby",
    "csharp": "csharp", "cs": "csharp", "c#": "csharp",
    "sql": "sql", "r": "r", "julia": "julia", "lua": "lua", "perl": "perl", "haskell": "haskell",
    "html": "html", "css": "css",
}
# Blocks that show a program's output or a console session, not code of the answer.
NOT_CODE = ("", "text", "output", "console", "plaintext", "txt", "json", "yaml", "xml", "csv", "md", "markdown")


def language_name(tag: str | None) -> str | None:
    """A fence tag or a dataset's language value as one name (python, cpp, ...); None when unknown or empty."""
    if not tag:
        return None
    tag = tag.strip().lower()
    return ALIASES.get(tag, tag if tag.isalpha() and tag not in NOT_CODE else None)


@dataclass(frozen=True)
class Extracted:
    language: str | None  # of the solution, else the dataset's own language value
    code: str | None  # the solution to verify; None when the answer holds no code
    blocks: int  # fenced blocks in the answer


def _block_language(tag: str, code: str, hint: str | None) -> str | None:
    named = language_name(tag)
    if named:
        return named
    if tag.strip():  # output, text, json ...: not code
        return None
    if hint and hint != PYTHON:
        return hint
    return PYTHON if parses(code) and any(w in code for w in ("def ", "class ", "import ", "=", "(")) else None


def _python_solution(blocks: list[str]) -> str | None:
    usable = [b for b in blocks if parses(b)]
    defining = [b for b in usable if defined_functions(b) or "class " in b]
    if defining:
        return "\n\n\n".join(defining)
    return max(usable, key=len) if usable else None


def answer_with_code(messages: list[dict]) -> str | None:
    """The last assistant turn that holds a fenced block, else the last assistant turn."""
    answers = [m["content"] for m in messages if m["role"] == "assistant" and m["content"]]
    with_code = [a for a in answers if code_blocks(a)]
    return (with_code or answers or [None])[-1]


def extract_solution(messages: list[dict], lang_hint: str | None = None) -> Extracted:
    hint = language_name(lang_hint)
    answer = answer_with_code(messages)
    if answer is None:
        return Extracted(hint, None, 0)
    blocks = code_blocks(answer)
    if not blocks:  # an answer that is nothing but Python code, unfenced
        bare = answer.strip()
        is_python = hint in (None, PYTHON) and parses(bare) and bool(defined_functions(bare))
        return Extracted(PYTHON if is_python else hint, bare if is_python else None, 0)
    by_language: dict[str, list[str]] = {}
    for tag, code in blocks:
        language = _block_language(tag, code, hint)
        if language and code.strip():
            by_language.setdefault(language, []).append(code)
    if not by_language:
        return Extracted(hint, None, len(blocks))
    # The answer's language: the dataset's when the answer has code in it, else the one with the most code.
    language = hint if hint in by_language else max(by_language, key=lambda k: sum(map(len, by_language[k])))
    code = _python_solution(by_language[language]) if language == PYTHON else max(by_language[language], key=len)
    return Extracted(language, code, len(blocks))
