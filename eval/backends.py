"""Completion backends: chat conversations in, answer texts out, in batches.

    backend = make_backend("bundled")                                  # the bundled offline teacher (llama.cpp)
    backend = make_backend("gpt-4o-mini", base_url="https://api.openai.com/v1")   # any OpenAI-compatible server
    backend = make_backend("/path/to/checkpoint")                      # a local transformers checkpoint
    texts = backend.generate([GenRequest("HumanEval/0#0", messages, seed=0)])
    backend.describe()      # for the manifest: backend, model, hash, decoding, batch size

The OpenAI-compatible backends go through resources.llm.TeacherClient, so retries, bounded concurrency and the
persistent response cache come with them. The transformers backend batches with left padding and the tokenizer's chat
template, greedy at temperature 0 and sampled otherwise.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from pathlib import Path

from resources.files import sha256_file
from resources.llm import ChatRequest, TeacherClient, TeacherError
from resources.local_llm import BUNDLED_MODELS, DEFAULT_MODEL, LocalTeacherServer

BUNDLED = "bundled"


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


class OpenAIChatBackend:
    """Any OpenAI-compatible chat endpoint (OpenAI, vLLM, llama.cpp's server)."""

    kind = "openai"

    def __init__(self, base_url: str, model: str, decoding: Decoding = Decoding(), api_key: str | None = None,
                 concurrency: int = 8, timeout_s: float = 300.0) -> None:
        self.decoding = decoding
        self.client = TeacherClient(base_url, model, api_key=api_key, concurrency=concurrency, timeout_s=timeout_s)

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
        return {"backend": self.kind, "base_url": self.client.base_url, "model": self.client.model,
                "model_sha256": None, "decoding": self.decoding.as_dict(), "concurrency": self.client.concurrency}

    def close(self) -> None:
        pass


class BundledBackend(OpenAIChatBackend):
    """The bundled offline teacher (resources/local_llm.py), started here and stopped by close()."""

    kind = "bundled"

    def __init__(self, model: str = DEFAULT_MODEL, decoding: Decoding = Decoding()) -> None:
        self.server = LocalTeacherServer(model).start()
        # llama.cpp's server answers one request at a time; more in flight would only time out in its queue.
        super().__init__(self.server.base_url, self.server.model, decoding, concurrency=1, timeout_s=900.0)
        self.bundled = model

    def describe(self) -> dict:
        entry = BUNDLED_MODELS.get(self.bundled)
        return {**super().describe(), "model": self.bundled,
                "model_sha256": entry.sha256 if entry else sha256_file(Path(self.bundled))}

    def close(self) -> None:
        self.server.close()


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


def make_backend(model: str, base_url: str | None = None, decoding: Decoding = Decoding(),
                 api_key: str | None = None, concurrency: int = 8, batch_size: int = 8):
    """--base-url: an OpenAI-compatible server; a local folder: transformers; "bundled" or "bundled:NAME": the
    offline teacher (NAME a bundled model or a GGUF path)."""
    if base_url:
        return OpenAIChatBackend(base_url, model, decoding, api_key=api_key, concurrency=concurrency)
    if model == BUNDLED or model.startswith(BUNDLED + ":"):
        return BundledBackend(model.partition(":")[2] or DEFAULT_MODEL, decoding)
    if Path(model).is_dir():
        return TransformersBackend(model, decoding, batch_size=batch_size)
    raise BackendError(f"--model {model!r} is not a local checkpoint folder: give --base-url for an OpenAI-compatible "
                       f"server, a checkpoint folder, or '{BUNDLED}' for the bundled offline teacher")
