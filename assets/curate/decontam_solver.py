"""The solver of the execution layer: a model writes a function for each problem that came without one.

The execution layer (assets/curate/decontam_layers.py) can only run code; rows given as text alone (`crucible
decontam` input without "solution", or a solution that is a stdin script) would otherwise be judged by the text
layers, which catch few paraphrases. A model that solves the problem gives the layer a function to bind to benchmark
entry points; the prompt (assets/prompts/decontam_solver.v1.txt) asks for parameters and return values instead of
input and output, so "read lines, print YES/NO" problems can still meet the benchmark's tests. A wrong answer only
costs recall: a function passes a benchmark's tests and agrees with its canonical solution on perturbed inputs only
if it computes the benchmark's function.

    solve = SolutionSolver(teacher.client())
    codes = solve(["Return the biggest element of a list of numbers.", ...])   # code or None per problem
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace

from assets.curate.decontam_review import add_missing_imports, review
from assets.generate.replies import extract_code
from assets.prompts import load_prompt
from resources.llm import ChatRequest, TeacherClient, TeacherError
from resources.teacher_endpoint import TeacherEndpoint

log = logging.getLogger(__name__)
PROMPT = "decontam_solver"
REPAIR_PROMPT = "decontam_solver_repair"


class SolutionSolver:
    """Callable: instructions -> one parseable Python code block per instruction, or None (no usable answer).

    Each answer is reviewed statically (assets/curate/decontam_review.py: undefined names, input() or print() instead of
    parameters and a return value); an answer with problems gets one repair turn naming them, and the repaired code
    replaces it when the review finds fewer problems in it."""

    def __init__(self, client: TeacherClient, prompt_version: int = 1, max_tokens: int = 512,
                 temperature: float = 0.8, repair_turns: int = 1) -> None:
        self.client = client
        self.temperature = temperature  # for attempts after the first (greedy) one
        self.prompt = load_prompt(PROMPT, prompt_version)
        self.repair = load_prompt(REPAIR_PROMPT, prompt_version)
        self.max_tokens = max_tokens
        self.repair_turns = repair_turns
        self.unanswered = 0  # answers without usable code (or failed requests), over all calls and attempts
        self.repairs_asked = 0  # answers sent back with the review's problems
        self.repairs_kept = 0  # repaired answers that replaced the first one

    def requests(self, instructions: list[str], attempt: int = 0) -> list[ChatRequest]:
        """Attempt 0 is greedy; later attempts sample, seeded by the attempt number (so reruns hit the cache)."""
        sampling = {"temperature": self.temperature, "extra": {"seed": attempt}} if attempt else {"temperature": 0.0}
        return [ChatRequest(f"solve:{attempt}:{i}:{hashlib.sha256(text.encode()).hexdigest()[:12]}",
                            self.prompt.render(problem=text), max_tokens=self.max_tokens,
                            prompt_version=self.prompt.version, **sampling)
                for i, text in enumerate(instructions)]

    def _complete(self, requests: list[ChatRequest]) -> dict[str, str | None]:
        """request id -> the reply's text (None: the request failed)."""
        replies: dict[str, str | None] = {}

        async def collect() -> None:
            async for done in self.client.iter_complete(requests):
                if isinstance(done, TeacherError):
                    log.warning("decontamination solver: %s; that row is judged without execution evidence", done)
                    replies[done.request_id] = None
                else:
                    replies[done.id] = done.content

        if requests:
            asyncio.run(collect())
        return replies

    def __call__(self, instructions: list[str], attempt: int = 0) -> list[str | None]:
        requests = self.requests(instructions, attempt)
        replies = self._complete(requests)
        codes = {r.id: _code(replies.get(r.id)) for r in requests}
        # Failed requests are not repaired: the server said nothing a repair turn could build on.
        work = {r.id: replace(r, messages=_without_examples(r.messages))
                for r in requests if replies.get(r.id) is not None}
        for _ in range(self.repair_turns):
            follow_ups, found = [], {}
            for rid, request in work.items():
                problems = found[rid] = review(codes[rid])
                if problems:
                    follow_ups.append(replace(
                        request, id=f"{rid}:repair", prompt_version=f"{self.prompt.version}+{self.repair.version}",
                        messages=request.messages + [{"role": "assistant", "content": replies[rid]}]
                        + self.repair.render(problems="; ".join(problems))))
            self.repairs_asked += len(follow_ups)
            repaired = self._complete(follow_ups)
            work = {}
            for follow_up in follow_ups:
                rid = follow_up.id.removesuffix(":repair")
                text = repaired.get(follow_up.id)
                code = _code(text)
                if code is not None and len(review(code)) < len(found[rid]):
                    codes[rid], replies[rid] = code, text
                    self.repairs_kept += 1
                    work[rid] = follow_up
        out = [codes[r.id] for r in requests]
        self.unanswered += sum(code is None for code in out)
        return out


def _code(reply: str | None) -> str | None:
    """The reply's code with missing standard-library imports added (None: no reply or no usable code)."""
    code = extract_code(reply) if reply is not None else None
    return add_missing_imports(code) if code is not None else None


def _without_examples(messages: list[dict]) -> list[dict]:
    """The system turn and the problem, without the prompt's worked example between them: in a repair turn the
    1.5B model answered the example's problem again instead of fixing its own function."""
    return [m for m in messages[:1] if m["role"] == "system"] + messages[-1:]


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

    @property
    def repairs(self) -> tuple[int, int]:
        """(answers sent back with the review's problems, repaired answers kept)."""
        return (self.solver.repairs_asked, self.solver.repairs_kept) if self.solver else (0, 0)

    def __call__(self, instructions: list[str], attempt: int = 0) -> list[str | None]:
        if self.solver is None:
            self.solver = SolutionSolver(self.make_client())
        self.asked += len(instructions) if attempt == 0 else 0
        return self.solver(instructions, attempt)


@contextmanager
def solver_session(endpoint: TeacherEndpoint = TeacherEndpoint()) -> Iterator[SolutionSolver]:
    """A solver on the endpoint's model: a server's, or the bundled model's (its server started here, stopped after)."""
    with endpoint.serving() as client:
        yield SolutionSolver(client)
