"""eval/backends.py: the batched transformers backend on a tiny randomly initialised Llama with a locally trained
tokenizer (plumbing only: no claim about what it writes), `crucible eval run` with a checkpoint folder, and teacher
endpoints (the bundled model's server a spy: tests/llm_server_spy.py) with their own server or the resource's."""

import json

import pytest

import cli
from eval.backends import (
    BackendError,
    Decoding,
    EndpointBackend,
    GenRequest,
    TransformersBackend,
    checkpoint_sha256,
    make_backend,
)
from resources.bundled_models import BUNDLED_MODELS
from resources.llm import TeacherLLM
from resources.llm_server import LocalTeacher
from resources.teacher_endpoint import TeacherEndpoint
from tests.llm_server_spy import spy_servers
from tests.openai_stub_server import StubServer, StubState, expected_answer

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


def test_a_bundled_endpoint_gets_a_server_of_its_own_that_close_stops(monkeypatch):
    servers = spy_servers(monkeypatch)
    backend = make_backend(TeacherEndpoint.from_label("bundled:smollm2-135m"), Decoding(max_tokens=16))
    assert servers.started == ["smollm2-135m"]
    info = backend.describe()
    assert (info["backend"], info["model"], info["concurrency"]) == ("bundled", "smollm2-135m", 1)
    assert info["model_sha256"] == BUNDLED_MODELS["smollm2-135m"].sha256
    backend.close()
    assert servers.closed == ["smollm2-135m"]


def test_the_teacher_resource_s_backends_share_its_one_server(monkeypatch):
    servers = spy_servers(monkeypatch)
    teacher = TeacherLLM(local=LocalTeacher(model="smollm2-135m"))
    backends = [EndpointBackend.of_teacher(teacher), EndpointBackend.of_teacher(teacher, Decoding(max_tokens=300))]
    assert servers.started == ["smollm2-135m"]
    assert {b.client.base_url for b in backends} == {teacher.local.server().base_url}
    for backend in backends:
        backend.close()
    assert servers.closed == []  # the resource's server outlives the backends; the resource stops it
    teacher.local.teardown_after_execution(None)
    assert servers.closed == ["smollm2-135m"]


def test_an_endpoint_with_a_base_url_answers_through_the_teacher_client(tmp_path, monkeypatch):
    monkeypatch.setenv("CRUCIBLE_HOME", str(tmp_path))
    with StubServer(StubState()) as server:
        backend = make_backend(TeacherEndpoint(base_url=server.base_url, model="stub", concurrency=3))
        texts = backend.generate([GenRequest("a", conversation("def f"))])
    assert texts == [expected_answer(conversation("def f"))]
    info = backend.describe()
    assert (info["backend"], info["model"], info["model_sha256"], info["concurrency"]) == ("openai", "stub", None, 3)


def test_eval_run_turns_model_and_base_url_into_an_endpoint_at_the_edge(monkeypatch):
    from eval.cli import _model

    monkeypatch.setenv("OPENAI_API_KEY", "key")
    assert _model("bundled", None, 8) == TeacherEndpoint()
    assert _model("bundled:smollm2-135m", None, 8) == TeacherEndpoint(bundled="smollm2-135m")
    assert _model("gpt-4o-mini", "https://api.example/v1", 4) == TeacherEndpoint(
        base_url="https://api.example/v1", model="gpt-4o-mini", api_key="key", concurrency=4)
    assert _model("/checkpoints/run-1", None, 8) == "/checkpoints/run-1"
