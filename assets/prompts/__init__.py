"""Versioned prompt templates of the generation stages: `assets/prompts/<name>.v<N>.txt`.

A template is a chat: lines `<<<system>>>`, `<<<user>>>` and `<<<assistant>>>` start turns (a worked example is a
real user/assistant pair), `#` lines before the first turn are comments, and `{{name}}` is replaced by a variable.
The version recorded in every row is `<name>.v<N>@<sha256 of the file, 8 hex>`, so an edited file is visible in the
data even if someone forgets to bump N. The format and loader are shared with evaluation (eval/prompt_templates.py).
"""

from pathlib import Path

from eval.prompt_templates import Template as Prompt
from eval.prompt_templates import TemplateError as PromptError
from eval.prompt_templates import load_template

PROMPTS_DIR = Path(__file__).parent

__all__ = ["PROMPTS_DIR", "Prompt", "PromptError", "load_prompt"]


def load_prompt(name: str, version: int = 1) -> Prompt:
    return load_template(name, version, PROMPTS_DIR)
