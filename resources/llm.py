"""The teacher LLM over any OpenAI-compatible API: bounded concurrency, retries, a persistent cache, usage and cost.

    client = TeacherClient(base_url="http://127.0.0.1:8000/v1", model="m")
    results = asyncio.run(client.complete_all([ChatRequest("a", [{"role": "user", "content": "hi"}])]))

`TeacherLLM` is the Dagster resource: its endpoint (resources/teacher_endpoint.py) is a configured server, or with no
base URL the bundled offline teacher, whose server (resources/llm_server.py) it starts on first use.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import random
import threading
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field

import dagster as dg
import openai
from openai.types.chat import ChatCompletion
from pydantic import Field, PrivateAttr

from resources.bundled_models import DEFAULT_MODEL
from resources.home import Home, home_field
from resources.llm_cache import LLMCache, request_key
from resources.llm_server import LocalTeacher
from resources.progress import progress
from resources.teacher_endpoint import TeacherEndpoint
from resources.teacher_state import GGUF, TeacherState, read_teacher_state

RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
NO_KEY = "sk-no-key-needed"  # local OpenAI-compatible servers want some key; they do not check it


class TeacherError(RuntimeError):
    """A request that could not be answered, after every attempt; the message names the request."""

    def __init__(self, message: str, request_id: str | None = None) -> None:
        super().__init__(message)
        self.request_id = request_id


@dataclass(frozen=True)
class ChatRequest:
    id: str
    messages: list[dict]
    temperature: float = 0.0
    max_tokens: int = 1024
    prompt_version: str | None = None
    extra: dict = field(default_factory=dict)  # further sampling parameters (top_p, seed, stop, ...)

    def params(self) -> dict:
        return {"temperature": self.temperature, "max_tokens": self.max_tokens, **self.extra}


@dataclass
class Completion:
    id: str
    content: str
    usage: dict
    cached: bool
    key: str
    finish_reason: str | None = None
    attempts: int = 0
    latency_s: float = 0.0

    def row(self) -> dict:
        return {"id": self.id, "content": self.content, "usage": self.usage, "cached": self.cached}


@dataclass
class UsageTotals:
    requests: int = 0
    cached: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0

    def add(self, completion: Completion, cost: float) -> None:
        self.requests += 1
        self.cached += completion.cached
        self.retries += max(0, completion.attempts - 1)
        if not completion.cached:
            self.prompt_tokens += int(completion.usage.get("prompt_tokens") or 0)
            self.completion_tokens += int(completion.usage.get("completion_tokens") or 0)
            self.cost_usd += cost

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


class _Malformed(Exception):
    """A 200 response whose body is not a usable chat completion."""


class TeacherClient:
    """Async batch client. Retries are written here rather than left to the openai package because its retry loop
    neither covers successful responses with malformed bodies nor reports attempts per request; so the package's own
    retries are off (max_retries=0) and this loop handles every transient failure the same way."""

    def __init__(self, base_url: str, model: str, api_key: str | None = None, concurrency: int = 8,
                 timeout_s: float = 120.0, max_attempts: int = 6, backoff_base_s: float = 0.5,
                 backoff_max_s: float = 30.0, cache: LLMCache | None = None,
                 usd_per_mtok_in: float = 0.0, usd_per_mtok_out: float = 0.0) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        self.base_url, self.model = base_url, model
        self.api_key = api_key or NO_KEY
        self.concurrency, self.timeout_s, self.max_attempts = concurrency, timeout_s, max_attempts
        self.backoff_base_s, self.backoff_max_s = backoff_base_s, backoff_max_s
        self.cache = cache if cache is not None else LLMCache()
        self.price_in, self.price_out = usd_per_mtok_in, usd_per_mtok_out
        self.totals = UsageTotals()

    def cost(self, usage: dict) -> float:
        return (int(usage.get("prompt_tokens") or 0) * self.price_in
                + int(usage.get("completion_tokens") or 0) * self.price_out) / 1e6

    # -- one request ---------------------------------------------------------------------------------------------
    async def complete(self, request: ChatRequest, api: openai.AsyncOpenAI, gate: asyncio.Semaphore) -> Completion:
        params = request.params()
        key = request_key(self.model, request.messages, params, request.prompt_version)
        hit = self.cache.get(key)
        if hit is not None:
            done = Completion(request.id, hit["content"], hit["usage"], True, key, hit["finish_reason"])
            self.totals.add(done, 0.0)
            return done
        async with gate:
            start = time.monotonic()
            last_error = "no attempt made"
            for attempt in range(1, self.max_attempts + 1):
                try:
                    # The client's generic `post` rather than `chat.completions.create`: create runs the body through
                    # the package's typed transform first, which for plain JSON messages changes nothing and cost
                    # ~1 ms of CPU per request (600 requests against a local instant stub: 1.9 s of CPU with
                    # create, 1.3 s with post), a tenth of the pipeline's time with a fast teacher. The reply is
                    # parsed into the same ChatCompletion, errors are the same exceptions.
                    response = await api.post("/chat/completions", cast_to=ChatCompletion, body={
                        "model": self.model, "messages": request.messages, **params})
                    content, finish, usage = _unpack(response)
                except openai.APIStatusError as exc:
                    if exc.status_code not in RETRYABLE_STATUS:
                        raise TeacherError(f"request {request.id!r}: HTTP {exc.status_code} from {self.base_url}: "
                                           f"{_short(exc)} (not retryable)", request.id) from exc
                    last_error = f"HTTP {exc.status_code}: {_short(exc)}"
                    wait = _retry_after(exc.response) or self._backoff(attempt)
                except (openai.APITimeoutError, openai.APIConnectionError, openai.APIResponseValidationError,
                        _Malformed, ValueError) as exc:
                    last_error = f"{type(exc).__name__}: {_short(exc)}"
                    wait = self._backoff(attempt)
                else:
                    self.cache.put(key, self.model, {"messages": request.messages, "params": params,
                                                     "prompt_version": request.prompt_version},
                                   content, finish, usage)
                    done = Completion(request.id, content, usage, False, key, finish, attempt,
                                      time.monotonic() - start)
                    self.totals.add(done, self.cost(usage))
                    return done
                if attempt < self.max_attempts:
                    await asyncio.sleep(min(wait, self.backoff_max_s))
            raise TeacherError(f"request {request.id!r}: no answer from {self.base_url} after {self.max_attempts} "
                               f"attempts; last error: {last_error}", request.id)

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter."""
        return random.uniform(0, min(self.backoff_max_s, self.backoff_base_s * 2 ** (attempt - 1)))

    def _api(self) -> openai.AsyncOpenAI:
        # aiohttp underneath instead of the default httpx: the same requests cost ~0.6 ms less CPU each (600 requests
        # to a local instant stub: 1.35 s against 0.95 s of CPU), and the client is CPU-bound when the teacher is fast.
        return openai.AsyncOpenAI(base_url=self.base_url, api_key=self.api_key, timeout=self.timeout_s,
                                  max_retries=0, http_client=openai.DefaultAioHttpClient(timeout=self.timeout_s))

    # -- batches -------------------------------------------------------------------------------------------------
    async def iter_complete(self, requests: Iterable[ChatRequest]) -> AsyncIterator[Completion | TeacherError]:
        """Yield each completion (or the TeacherError that ended it) as soon as it is done."""
        gate = asyncio.Semaphore(self.concurrency)
        api = self._api()
        try:
            tasks = [asyncio.ensure_future(self.complete(r, api, gate)) for r in requests]
            with progress(len(tasks), self.model, unit="reply") as bar:  # shown by `crucible` on a terminal only
                for next_done in asyncio.as_completed(tasks):
                    try:
                        yield await next_done
                    except TeacherError as exc:
                        yield exc
                    bar.advance()
        finally:
            await api.close()

    async def complete_all(self, requests: Iterable[ChatRequest]) -> list[Completion]:
        """Every request answered, in input order; raises the first TeacherError after the others finished."""
        requests = list(requests)
        results = {}
        errors = []
        async for item in self.iter_complete(requests):
            if isinstance(item, TeacherError):
                errors.append(item)
            else:
                results[item.id] = item
        if errors:
            raise TeacherError(f"{len(errors)} of {len(requests)} requests failed; first: {errors[0]}")
        return [results[r.id] for r in requests]

    def complete_batch(self, requests: Iterable[ChatRequest]) -> list[Completion]:
        return asyncio.run(self.complete_all(requests))


def _unpack(response) -> tuple[str, str | None, dict]:
    choices = getattr(response, "choices", None)
    if not choices:
        raise _Malformed("response has no choices")
    message = choices[0].message
    content = getattr(message, "content", None)
    if not isinstance(content, str):
        raise _Malformed("response choice has no text content")
    usage = response.usage.model_dump() if getattr(response, "usage", None) is not None else {}
    usage = {k: usage.get(k) for k in ("prompt_tokens", "completion_tokens", "total_tokens")}
    return content, choices[0].finish_reason, usage


def _retry_after(response) -> float | None:
    value = response.headers.get("retry-after") if response is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: rare from model servers; fall back to our own backoff


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 200 else text[:197] + "..."


class TeacherLLM(dg.ConfigurableResource):
    """The teacher model behind any OpenAI-compatible API (OpenAI, vLLM, llama.cpp), with a persistent cache."""

    base_url: str | None = Field(default=None, description="OpenAI-compatible base URL (CRUCIBLE_LLM_BASE_URL); "
                                                           "empty starts the bundled offline teacher.")
    model: str | None = Field(default=None, description="Model name on the server (CRUCIBLE_LLM_MODEL); the "
                                                        "offline teacher's model is set on `local`.")
    api_key: str | None = Field(default=None, description="API key (OPENAI_API_KEY); unused by local servers.")
    concurrency: int = Field(default=8, description="Requests in flight at once at the server behind base_url (the "
                                                    "bundled model's own limits: resources/teacher_endpoint.py).")
    timeout_s: float = Field(default=300.0, description="Per-request timeout, seconds.")
    max_attempts: int = Field(default=6, description="Attempts per request before it is reported as failed.")
    usd_per_mtok_in: float = Field(default=0.0, description="Price per million prompt tokens, for cost accounting.")
    usd_per_mtok_out: float = Field(default=0.0, description="Price per million completion tokens.")
    home: str | None = home_field()  # where the answer cache lives

    local: LocalTeacher = Field(default_factory=LocalTeacher,
                                description="The bundled offline teacher, started on first use when base_url is "
                                            "empty.")
    follow_promotions: bool = Field(default=True, description="Once the self-learning decision has promoted a "
                                                              "student (the `teacher` asset, $CRUCIBLE_HOME/"
                                                              "teacher.json), send every request to that student "
                                                              "instead of the teacher configured here.")

    _promoted: dict = PrivateAttr(default_factory=dict)  # endpoint -> the started server of a promoted student
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def configured_endpoint(self) -> TeacherEndpoint:
        """`base_url` and `model`, or without a base URL `local`'s bundled model."""
        return TeacherEndpoint(base_url=self.base_url, model=self.model, api_key=self.api_key, bundled=self.local.model,
                               concurrency=self.concurrency, timeout_s=self.timeout_s)

    @property
    def state(self) -> TeacherState | None:
        """The current teacher as the `teacher` asset last recorded it (None before any decision)."""
        return read_teacher_state(Home.from_env(self.home))

    @property
    def endpoint(self) -> TeacherEndpoint:
        """Where this resource's requests go: a promoted student (when following promotions), else the configured
        endpoint."""
        state = self.state if self.follow_promotions else None
        if state is None or not state.is_student:
            return self.configured_endpoint
        if state.serving == GGUF:
            return TeacherEndpoint(bundled=state.gguf, timeout_s=self.timeout_s)
        return TeacherEndpoint(command=state.command, checkpoint=state.checkpoint, concurrency=self.concurrency,
                               timeout_s=self.timeout_s)

    def client(self) -> TeacherClient:
        """A client for the endpoint; a local server (the bundled model, or a promoted student) is started on first
        use and kept for the run."""
        endpoint = self.endpoint
        server = self.local.server if endpoint == self.configured_endpoint else lambda: self._promoted_server(endpoint)
        return endpoint.client(server, cache=LLMCache(home=Home.from_env(self.home)),
                               max_attempts=self.max_attempts,
                               usd_per_mtok_in=self.usd_per_mtok_in, usd_per_mtok_out=self.usd_per_mtok_out)

    def _promoted_server(self, endpoint: TeacherEndpoint):
        """The promoted student's server, started on first use (and again if it died), stopped after the run."""
        with self._lock:
            server = self._promoted.get(endpoint)
            if server is None or not server.running():
                if server is not None:
                    server.close()
                server = self._promoted[endpoint] = endpoint.server()
                server.start()
            return server

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        with self._lock:
            for server in self._promoted.values():
                server.close()
            self._promoted.clear()

    @classmethod
    def configured(cls, home: Home, base_url: str | None = None, model: str | None = None,
                   bundled: str | None = None) -> TeacherLLM:
        """The teacher as a command configures it: its options first, then CRUCIBLE_LLM_BASE_URL, CRUCIBLE_LLM_MODEL
        and OPENAI_API_KEY (as definitions.py reads them); without a base URL, the bundled model."""
        root = str(home.root)
        return cls(base_url=base_url or os.environ.get("CRUCIBLE_LLM_BASE_URL"),
                   model=model or os.environ.get("CRUCIBLE_LLM_MODEL"), api_key=os.environ.get("OPENAI_API_KEY"),
                   local=LocalTeacher(model=bundled or DEFAULT_MODEL, home=root), home=root)
