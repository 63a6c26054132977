"""The chat template training renders with: it must mark assistant turns with {% generation %} ... {% endgeneration %}.

How the loss is restricted to assistant tokens: TRL 1.16's SFTTrainer, with `assistant_only_loss=True`, tokenizes each
chat through `apply_chat_template(..., return_assistant_tokens_mask=True)`; transformers turns the characters a template
emits between {% generation %} and {% endgeneration %} into `assistant_masks`, and TRL sets every other label to
-100. Templates without the markers give an all-zero mask (TRL then refuses to train), so `resolve_template` picks:

- `auto`: the base tokenizer's own template if it already has the markers; else TRL's hand-patched training variant of
  it (`trl.chat_template_utils.get_training_chat_template`: Qwen2.5, Llama 3, Gemma, Phi-3, DeepSeek-V3, ...); else
  ChatML below when the vocabulary has <|im_start|> and <|im_end|>;
- `chatml`: ChatML below (SmolLM2 and the tiny model), with an optional default system turn;
- a `.jinja` file, which must carry the markers itself.

In our ChatML the marked span of an assistant turn is its content plus <|im_end|>, so the model learns to stop; the
role header and the newline after <|im_end|> are not trained. Tool turns (execution results with execution_role=tool)
render as `<|im_start|>tool` blocks and, like user turns, are never trained. The chosen template is saved with the
checkpoint's tokenizer: it renders exactly like the original, the markers are no-ops outside training.
"""

from __future__ import annotations

import json
from pathlib import Path

from trl.chat_template_utils import get_training_chat_template, has_generation_markers

IM_START, IM_END = "<|im_start|>", "<|im_end|>"


class ChatTemplateError(ValueError):
    """No training template with assistant markers could be found for this tokenizer. One line."""


def chatml_template(system_prompt: str | None = None) -> str:
    """ChatML with generation markers; `system_prompt` is inserted when a chat does not start with a system turn."""
    default_system = ""
    if system_prompt:
        # A JSON string literal is a valid Jinja string literal (same escapes), so any text is safe here.
        default_system = (
            "{%- if messages[0]['role'] != 'system' %}"
            "{{- '<|im_start|>system\\n' + " + json.dumps(system_prompt) + " + '<|im_end|>\\n' }}"
            "{%- endif %}"
        )
    return (
        default_system
        + "{%- for message in messages %}"
        "{%- if message['role'] == 'assistant' %}"
        "{{- '<|im_start|>assistant\\n' }}"
        "{%- generation %}{{- message['content'] + '<|im_end|>' }}{%- endgeneration %}"
        "{{- '\\n' }}"
        "{%- else %}"
        "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
        "{%- endif %}"
        "{%- endfor %}"
        "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
    )


def _has_chatml_tokens(tokenizer) -> bool:
    vocab = tokenizer.get_vocab()
    return IM_START in vocab and IM_END in vocab


def resolve_template(tokenizer, choice: str = "auto", system_prompt: str | None = None) -> tuple[str, str]:
    """The training chat template for `tokenizer` (see the module docstring) and a few words saying which one."""
    if choice == "chatml":
        if not _has_chatml_tokens(tokenizer):
            raise ChatTemplateError("chat_template chatml: the tokenizer has no <|im_start|>/<|im_end|> tokens")
        return chatml_template(system_prompt), "chatml"
    if choice.endswith((".jinja", ".j2")):
        path = Path(choice)
        if not path.is_file():
            raise ChatTemplateError(f"chat_template {choice}: no such file")
        text = path.read_text()
        if not has_generation_markers(text):
            raise ChatTemplateError(f"chat_template {choice}: no {{% generation %}} markers around assistant turns")
        return text, f"file {path.name}"
    if choice != "auto":
        raise ChatTemplateError(f"chat_template {choice!r}: give auto, chatml or a .jinja file")
    current = tokenizer.chat_template
    if isinstance(current, dict):
        current = current.get("default")
    if current and has_generation_markers(current):
        return current, "the base tokenizer's own"
    if current:
        try:
            patched = get_training_chat_template(tokenizer)
        except ValueError:  # TRL has no training variant of this template
            patched = None
        if patched:
            return patched, "TRL's training variant of the base template"
    if _has_chatml_tokens(tokenizer):
        return chatml_template(system_prompt), "chatml (the base template has no training variant)"
    raise ChatTemplateError("chat_template auto: the base template has no {% generation %} markers, TRL has no "
                            "training variant of it and the vocabulary lacks ChatML tokens; give a .jinja file")


def stop_token(template: str, tokenizer) -> str | None:
    """The end-of-turn token generation must stop at: <|im_end|> for ChatML-style templates, else the eos token."""
    if IM_END in template and IM_END in tokenizer.get_vocab():
        return IM_END
    return tokenizer.eos_token
