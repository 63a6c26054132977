import copy

import pytest
from trl.chat_template_utils import qwen2_5_chat_template

from finetune.chat_template import IM_END, ChatTemplateError, chatml_template, resolve_template
from finetune.data import load_split
from finetune.sft_trainer import build_trainer
from tests.finetune.conftest import tiny_recipe

HEADER = "<|im_start|>assistant\n"


def expected_spans(text: str, chat: list[dict]) -> list[tuple[int, int]]:
    """Character spans of each assistant turn's content plus its <|im_end|>, found in the rendered text in order."""
    spans, pos = [], 0
    for turn in chat:
        if turn["role"] == "assistant":
            piece = turn["content"] + IM_END
            start = text.index(HEADER + piece, pos) + len(HEADER)
            spans.append((start, start + len(piece)))
            pos = start + len(piece)
    return spans


@pytest.fixture(scope="module")
def prepared(sft_dir, models_dir, tmp_path_factory, quiet):
    return build_trainer(tiny_recipe(), sft_dir, tmp_path_factory.mktemp("mask"), max_steps=1, models_dir=models_dir,
                         log=lambda _: None)


def test_labels_cover_exactly_the_assistant_turns(prepared, sft_dir):
    tokenizer = prepared.tokenizer
    chats = load_split(sft_dir, "train")["messages"]
    rows = list(prepared.trainer.train_dataset)
    assert len(rows) == len(chats)
    for chat, row in zip(chats, rows):
        text = tokenizer.apply_chat_template(chat, tokenize=False)
        encoded = tokenizer(text, return_offsets_mapping=True, add_special_tokens=False)
        assert encoded["input_ids"] == row["input_ids"]
        spans = expected_spans(text, chat)
        expected = [any(s <= a and b <= e for s, e in spans) for a, b in encoded["offset_mapping"]]
        trained = [label != -100 for label in row["labels"]]
        assert trained == expected
        # Trained positions carry their own token (TRL shifts inside the loss); everything else is -100.
        assert all(label == token for label, token, keep in zip(row["labels"], row["input_ids"], trained) if keep)
        trained_text = tokenizer.decode([t for t, keep in zip(row["input_ids"], trained) if keep])
        assert trained_text == "".join(t["content"] + IM_END for t in chat if t["role"] == "assistant")
        untrained_text = tokenizer.decode([t for t, keep in zip(row["input_ids"], trained) if not keep])
        for turn in chat:
            if turn["role"] != "assistant":  # system, user, tool turns and execution results
                assert turn["content"] in untrained_text


def test_failing_first_answer_and_execution_result_are_in_the_sequence(prepared, sft_dir):
    chat = load_split(sft_dir, "train")["messages"][1]  # odd rows: the execution result is a tool turn
    assert [t["role"] for t in chat] == ["user", "assistant", "tool", "user", "assistant"]
    text = prepared.tokenizer.decode(prepared.trainer.train_dataset[1]["input_ids"])
    assert "<|im_start|>tool\nExecution result: FAILED" in text


def test_auto_keeps_a_template_that_has_markers(prepared):
    template, source = resolve_template(prepared.tokenizer, "auto")
    assert source == "the base tokenizer's own" and "{%- generation %}" in template


def test_auto_swaps_in_trls_training_variant_of_a_known_template(prepared):
    tokenizer = copy.deepcopy(prepared.tokenizer)
    tokenizer.chat_template = qwen2_5_chat_template
    template, source = resolve_template(tokenizer, "auto")
    assert source == "TRL's training variant of the base template"
    assert "generation" in template and template != qwen2_5_chat_template


def test_auto_falls_back_to_chatml(prepared):
    tokenizer = copy.deepcopy(prepared.tokenizer)
    tokenizer.chat_template = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    template, source = resolve_template(tokenizer, "auto", system_prompt="Be brief.")
    assert source.startswith("chatml") and template == chatml_template("Be brief.")


class NoChatML:
    chat_template = None

    def get_vocab(self):
        return {"a": 0}


def test_template_errors(tmp_path):
    with pytest.raises(ChatTemplateError, match="no <\\|im_start\\|>/<\\|im_end\\|> tokens"):
        resolve_template(NoChatML(), "chatml")
    with pytest.raises(ChatTemplateError, match="vocabulary lacks ChatML tokens"):
        resolve_template(NoChatML(), "auto")
    plain = tmp_path / "plain.jinja"
    plain.write_text("{% for m in messages %}{{ m['content'] }}{% endfor %}")
    with pytest.raises(ChatTemplateError, match="no {% generation %} markers"):
        resolve_template(NoChatML(), str(plain))


def test_chatml_default_system_prompt_is_escaped_and_renders_like_smollm2(prepared):
    tokenizer = copy.deepcopy(prepared.tokenizer)
    tokenizer.chat_template = chatml_template('Say "hi"\nthen stop')
    chat = [{"role": "user", "content": "hello"}]
    text = tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    assert text == ('<|im_start|>system\nSay "hi"\nthen stop<|im_end|>\n<|im_start|>user\nhello<|im_end|>\n'
                    '<|im_start|>assistant\n')
    with_system = [{"role": "system", "content": "S"}, *chat]
    assert tokenizer.apply_chat_template(with_system, tokenize=False).startswith("<|im_start|>system\nS<|im_end|>")
