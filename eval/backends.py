"""Completion backends: chat conversations in, answer texts out, in batches.

    backend = make_backend(TeacherEndpoint(bundled="qwen2.5-coder-1.5b"))  # the bundled teacher, its own server
    backend = make_backend(TeacherEndpoint(base_url="https://api.openai.com/v1", model="gpt-4o-mini"))
    backend = make_backend("/path/to/checkpoint")                          # a local transformers checkpoint
    backend = EndpointBackend.of_teacher(teacher, decoding)                # on the TeacherLLM resource's server
    texts = backend.generate([GenRequest("HumanEval/0#0", messages, seed=0)])
    backend.describe()      # for the manifest: backend, model, hash, decoding, batch size

Teacher endpoints (resources/teacher_endpoint.py) go through resources.llm.TeacherClient, so retries, the endpoint's
concurrency and the persistent response cache come with them. The transformers backend batches with left padding and
the tokenizer's chat template, greedy at temperature 0 and sampled otherwise.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from resources.files import sha256_file
from resources.llm import ChatRequest, TeacherClient, TeacherError, TeacherLLM
from resources.teacher_endpoint import BUNDLED, TeacherEndpoint


class BackendError(RuntimeError):
    """A backend that cannot be built or cannot answer; the message is one line saying what to do."""


@dataclass(frozen=True)
class Decoding:
    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 768

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class GenRequest:
    id: str
    messages: list[dict]
    seed: int = 0


class EndpointBackend:
    """A teacher endpoint answering chat: any OpenAI-compatible server, or a bundled model's llama.cpp server."""

    def __init__(self, endpoint: TeacherEndpoint, client: TeacherClient, decoding: Decoding = Decoding(),
                 on_close: Callable[[], object] | None = None) -> None:
        self.endpoint, self.client, self.decoding = endpoint, client, decoding
        self.kind = endpoint.kind
        self._on_close = on_close

    @classmethod
    def open(cls, endpoint: TeacherEndpoint, decoding: Decoding = Decoding()) -> EndpointBackend:
        """A backend of its own: a bundled model's server is started here and stopped by close()."""
        stack = ExitStack()
        return cls(endpoint, stack.enter_context(endpoint.serving()), decoding, stack.close)

    @classmethod
    def of_teacher(cls, teacher: TeacherLLM, decoding: Decoding = Decoding()) -> EndpointBackend:
        """The TeacherLLM resource's endpoint and client: the server it runs (started once per run) answers, and
        close() leaves that server to the resource."""
        return cls(teacher.endpoint, teacher.client(), decoding)

    def generate(self, requests: list[GenRequest], prompt_version: str | None = None) -> list[str]:
        """One answer per request, in order. The seed goes to the server (distinct samples of one prompt get distinct
        seeds, so they are neither the same sample nor the same cache entry)."""
        chat = [ChatRequest(r.id, r.messages, temperature=self.decoding.temperature,
                            max_tokens=self.decoding.max_tokens, prompt_version=prompt_version,
                            extra={"top_p": self.decoding.top_p, "seed": r.seed}) for r in requests]
        try:
            return [c.content for c in self.client.complete_batch(chat)]
        except TeacherError as exc:
            raise BackendError(str(exc)) from exc

    def describe(self) -> dict:
        return {"backend": self.kind, "base_url": self.client.base_url, "model": self.endpoint.name,
                "model_sha256": self.endpoint.model_sha256(), "decoding": self.decoding.as_dict(),
                "concurrency": self.client.concurrency}

    def close(self) -> None:
        on_close, self._on_close = self._on_close, None
        if on_close is not None:
            on_close()


def checkpoint_sha256(folder: Path) -> str:
    """A content hash of a checkpoint folder: every file's relative path and sha256, in name order."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(f"{path.relative_to(folder)}\0{sha256_file(path)}\n".encode())
    return digest.hexdigest()


class TransformersBackend:
    """A local checkpoint (AutoModelForCausalLM + its tokenizer's chat template), generating in batches."""

    kind = "transformers"

    def __init__(self, path: str | Path, decoding: Decoding = Decoding(), batch_size: int = 8,
                 device: str | None = None) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.path = Path(path)
        self.decoding, self.batch_size = decoding, batch_size
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer = AutoTokenizer.from_pretrained(self.path)
        if not self.tokenizer.chat_template:
            raise BackendError(f"{self.path}: the tokenizer has no chat_template; eval run needs an instruct (chat) "
                               "checkpoint")
        # Left padding keeps every prompt's last token at the end of the row, where generation continues.
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
        self.model = AutoModelForCausalLM.from_pretrained(self.path, dtype=dtype).to(self.device).eval()
        self._sha256: str | None = None

    def _batch(self, batch: list[GenRequest]) -> list[str]:
        import torch

        texts = [self.tokenizer.apply_chat_template(r.messages, tokenize=False, add_generation_prompt=True)
                 for r in batch]
        encoded = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
        sample = self.decoding.temperature > 0
        options = {"do_sample": sample, "max_new_tokens": self.decoding.max_tokens,
                   "pad_token_id": self.tokenizer.pad_token_id}
        if sample:
            torch.manual_seed(batch[0].seed)  # one seed per batch: a batch samples from one generator
            options.update(temperature=self.decoding.temperature, top_p=self.decoding.top_p)
        with torch.inference_mode():
            output = self.model.generate(**encoded, **options)
        new_tokens = output[:, encoded["input_ids"].shape[1]:]
        return self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)

    def generate(self, requests: list[GenRequest], prompt_version: str | None = None) -> list[str]:
        texts: list[str] = []
        for start in range(0, len(requests), self.batch_size):
            texts.extend(self._batch(requests[start:start + self.batch_size]))
        return texts

    def describe(self) -> dict:
        if self._sha256 is None:
            self._sha256 = checkpoint_sha256(self.path)
        return {"backend": self.kind, "model": str(self.path.resolve()), "model_sha256": self._sha256,
                "decoding": self.decoding.as_dict(), "batch_size": self.batch_size, "device": self.device,
                "dtype": str(self.model.dtype).replace("torch.", "")}

    def close(self) -> None:
        pass


def make_backend(model: TeacherEndpoint | str, decoding: Decoding = Decoding(), batch_size: int = 8):
    """A teacher endpoint: chat through it (a bundled model's server started here, stopped by close()); a local
    folder: transformers."""
    if isinstance(model, TeacherEndpoint):
        return EndpointBackend.open(model, decoding)
    if Path(model).is_dir():
        return TransformersBackend(model, decoding, batch_size=batch_size)
    raise BackendError(f"--model {model!r} is not a local checkpoint folder: give --base-url for an OpenAI-compatible "
                       f"server, a checkpoint folder, or '{BUNDLED}' for the bundled offline teacher")
