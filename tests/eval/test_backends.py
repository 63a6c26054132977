"""eval/backends.py: the batched transformers backend on a tiny randomly initialised Llama with a locally trained
tokenizer (plumbing only: no claim about what it writes), and `crucible eval run` with a checkpoint folder."""

import json

import pytest

import cli
from eval.backends import BackendError, Decoding, GenRequest, TransformersBackend, checkpoint_sha256, make_backend

CHAT_TEMPLATE = ("{% for m in messages %}<s>{{ m['role'] }}\n{{ m['content'] }}</s>\n{% endfor %}"
                 "{% if add_generation_prompt %}<s>assistant\n{% endif %}")
CORPUS = ["def add(a, b):\n    return a + b\n", "Write a Python function that solves the task.",
          "from typing import List\n\n\ndef f(numbers: List[float]) -> bool:\n    return True\n",
          "assert f([1.0, 2.0]) == False", "```python\nprint('hello')\n```"] * 20


def tiny_checkpoint(folder, chat_template: str | None = CHAT_TEMPLATE):
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<unk>", "<pad>", "<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator(CORPUS, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, unk_token="<unk>", pad_token="<pad>", bos_token="<s>",
                                        eos_token="</s>")
    if chat_template:
        tokenizer.chat_template = chat_template
    tokenizer.save_pretrained(folder)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                         pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("tiny-llama"))


def conversation(text: str) -> list[dict]:
    return [{"role": "system", "content": "You write Python."}, {"role": "user", "content": text}]


@pytest.mark.slow
def test_batched_generation_with_left_padding(checkpoint):
    backend = TransformersBackend(checkpoint, Decoding(max_tokens=6), batch_size=2)
    assert backend.tokenizer.padding_side == "left"
    requests = [GenRequest(f"r{i}", conversation("x " * (1 + 10 * i))) for i in range(3)]  # unequal lengths
    texts = backend.generate(requests)
    assert len(texts) == 3 and all(isinstance(t, str) for t in texts)
    # Greedy decoding is deterministic, and a prompt's answer does not depend on what it was batched with.
    assert backend.generate(requests) == texts
    alone = TransformersBackend(checkpoint, Decoding(max_tokens=6), batch_size=1).generate(requests)
    assert alone == texts
    info = backend.describe()
    assert info["backend"] == "transformers" and info["batch_size"] == 2 and info["device"] == "cpu"
    assert info["model_sha256"] == checkpoint_sha256(checkpoint) and info["decoding"]["max_tokens"] == 6


def test_sampling_is_seeded(checkpoint):
    backend = TransformersBackend(checkpoint, Decoding(temperature=1.0, max_tokens=8), batch_size=4)
    requests = [GenRequest("a", conversation("def f"), seed=3)]
    assert backend.generate(requests) == backend.generate(requests)


def test_a_checkpoint_without_chat_template_is_refused(tmp_path):
    folder = tiny_checkpoint(tmp_path / "base", chat_template=None)
    with pytest.raises(BackendError, match="no chat_template"):
        make_backend(str(folder))


def test_eval_run_with_a_local_checkpoint(checkpoint, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CRUCIBLE_HOME", str(tmp_path / "home"))
    out = tmp_path / "samples.jsonl"
    assert cli.main(["eval", "run", "--benchmark", "humaneval", "--model", str(checkpoint), "--limit", "2",
                     "--max-tokens", "8", "--mode", "exec_feedback", "--rounds", "1", "--samples-out", str(out)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["tasks_scored"] == 2 and report["mode"] == "exec_feedback"
    assert report["manifest"]["generation"]["model"]["backend"] == "transformers"
    assert set(report["manifest"]["versions"]) >= {"transformers", "torch"}
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["task_id"] for r in rows] == ["HumanEval/0", "HumanEval/1"]
    assert all(isinstance(r["raw"], str) and r["messages"][-1]["role"] == "assistant" for r in rows)
