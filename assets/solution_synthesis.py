"""The solver of the execution layer: a model writes a function for each problem that came without one.

The execution layer (assets/contamination.py) can only run code; rows given as text alone (`crucible decontam` input
without "solution", or a solution that is a stdin script) would otherwise be judged by the text layers, which catch
few paraphrases. A model that solves the problem gives the layer a function to bind to benchmark entry points; the
prompt (assets/prompts/decontam_solver.v1.txt) asks for parameters and return values instead of input and output,
so "read lines, print YES/NO" problems can still meet the benchmark's tests. A wrong answer only costs recall: a
function passes a benchmark's tests and agrees with its canonical solution on perturbed inputs only if it computes
the benchmark's function.

    solve = SolutionSolver(teacher.client())
    codes = solve(["Return the biggest element of a list of numbers.", ...])   # code or None per problem
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from assets.prompting import load_prompt
from assets.replies import extract_code
from resources.llm import ChatRequest, TeacherClient, TeacherError
from resources.local_llm import DEFAULT_MODEL, LocalTeacherServer

log = logging.getLogger(__name__)
PROMPT = "decontam_solver"


class SolutionSolver:
    """Callable: instructions -> one parseable Python code block per instruction, or None (no usable answer)."""

    def __init__(self, client: TeacherClient, prompt_version: int = 1, max_tokens: int = 512,
                 temperature: float = 0.8) -> None:
        self.client = client
        self.temperature = temperature  # for attempts after the first (greedy) one
        self.prompt = load_prompt(PROMPT, prompt_version)
        self.max_tokens = max_tokens
        self.unanswered = 0  # answers without usable code (or failed requests), over all calls and attempts

    def requests(self, instructions: list[str], attempt: int = 0) -> list[ChatRequest]:
        """Attempt 0 is greedy; later attempts sample, seeded by the attempt number (so reruns hit the cache)."""
        sampling = {"temperature": self.temperature, "extra": {"seed": attempt}} if attempt else {"temperature": 0.0}
        return [ChatRequest(f"solve:{attempt}:{i}:{hashlib.sha256(text.encode()).hexdigest()[:12]}",
                            self.prompt.render(problem=text), max_tokens=self.max_tokens,
                            prompt_version=self.prompt.version, **sampling)
                for i, text in enumerate(instructions)]

    def __call__(self, instructions: list[str], attempt: int = 0) -> list[str | None]:
        requests = self.requests(instructions, attempt)
        codes: dict[str, str | None] = {}

        async def collect() -> None:
            async for done in self.client.iter_complete(requests):
                if isinstance(done, TeacherError):
                    log.warning("decontamination solver: %s; that row is judged without execution evidence", done)
                    codes[done.request_id] = None
                else:
                    codes[done.id] = extract_code(done.content)

        asyncio.run(collect())
        out = [codes.get(r.id) for r in requests]
        self.unanswered += sum(code is None for code in out)
        return out


class LazySolver:
    """A SolutionSolver whose client (and so the bundled model's server) is made on the first call only: pipeline
    rows come with solutions, so most runs never need it."""

    def __init__(self, make_client: Callable[[], TeacherClient]) -> None:
        self.make_client = make_client
        self.solver: SolutionSolver | None = None
        self.asked = 0

    @property
    def unanswered(self) -> int:
        return self.solver.unanswered if self.solver else 0

    def __call__(self, instructions: list[str], attempt: int = 0) -> list[str | None]:
        if self.solver is None:
            self.solver = SolutionSolver(self.make_client())
        self.asked += len(instructions) if attempt == 0 else 0
        return self.solver(instructions, attempt)


@contextmanager
def solver_session(base_url: str | None = None, model: str | None = None,
                   bundled: str = DEFAULT_MODEL) -> Iterator[SolutionSolver]:
    """A solver on an OpenAI-compatible server, or on the bundled model (llama.cpp started here, stopped after)."""
    if base_url:
        yield SolutionSolver(TeacherClient(base_url, model or "default"))
        return
    with LocalTeacherServer(bundled) as server:
        # llama.cpp answers one request at a time (see TeacherLLM.client).
        yield SolutionSolver(TeacherClient(server.base_url, server.model, concurrency=1, timeout_s=900.0))
