"""Benchmark contamination: three layers that each flag a row (problem text + optional solution) as a benchmark
problem.

1. n-gram: the share of a benchmark item's token 10-grams (of its description, prompt, solution or tests) that
   also occur in the row; catches copies and light edits, whatever the row's length.
2. embedding: cosine similarity of the row's problem text to two views of each item: its description (the
   docstring's prose, no signature or doctests) and its prompt (what a model is shown: signature, docstring and
   worked examples for HumanEval; the text and its asserts for MBPP). Either view over its own threshold fires.
   The description catches copies and close rewordings; the prompt view separates paraphrases from near misses
   better (a near miss shares the description's topic but not the signature and examples) and doubles the
   recall on rows that have no solution at the same false-positive rate.
3. execution: the row's solution, bound to the entry points of the top-k most similar items (both views summed)
   of fitting arity, run against their tests in the sandbox, then, where it passed, next to the canonical solution
   on perturbed test inputs (benchmark tests are few, and a different function can pass them by chance); passing
   both is contamination whatever the wording. A row without a runnable function (no solution, or a script that
   reads stdin) gets one written for it by a solver model when `solve` is given (assets/curate/decontam_solver.py):
   the text layers alone catch few paraphrases (recall 0.34 at 0 false positives on the labelled set), while a
   working function is evidence no rewording hides.

    index = BenchmarkIndex(load_benchmarks(), embedder.encode)
    # rows: id, instruction, solution?; run_batch: the sandbox's cached runner (verdicts cached like every run)
    found = scan(index, rows, settings, embedder.encode, sandbox.runner().run, solve)
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from assets.curate.decontam_binding import (
    agreement,
    agreement_program,
    batch_outcomes,
    batch_program,
    binding_programs,
    can_bind,
    entry_arity,
    parse_solution,
    perturbed_inputs,
)
from eval.benchmarks import BenchmarkItem

NGRAM, EMBEDDING, EXECUTION = "ngram", "embedding", "execution"
LAYERS = (NGRAM, EMBEDDING, EXECUTION)
# A row's batch of binding programs may run this many times the per-program limit before what it has not reported
# runs program by program (one slow binding costs what it would alone; two or more send the rest back).
BATCH_TIMEOUTS = 2
# When several layers fire, the row's verdict names the strongest evidence first.
PRECEDENCE = (EXECUTION, NGRAM, EMBEDDING)
NGRAM_FIELDS = ("description", "prompt", "solution", "test")
_TOKEN = re.compile(r"\w+|[^\w\s]")


@dataclass(frozen=True)
class DecontamSettings:
    """Defaults chosen by benchmarks/calibrate_decontam.py on tests/data/decontam_labelled.jsonl (148 rows, bfloat16
    all-MiniLM-L6-v2, the bundled Qwen2.5-Coder-1.5B as solver, its code reviewed and repaired): all layers
    P=1.000 R=0.988 FPR=0 (embedding thresholds chosen out of sample: 5-fold R=0.978 FPR=0.013); with every solution
    taken away (text-only input) P=0.986 R=0.912 FPR=0.015; the text layers alone P=1.000 R=0.338 FPR=0. On the
    held-out set (tests/data/decontam_heldout.jsonl, mostly text only): R=0.931 at 0 false positives."""

    ngram_threshold: float = 0.5  # share of an item field's n-grams found in the row
    embedding_threshold: float = 0.95  # cosine similarity, row problem text vs item description
    prompt_threshold: float = 0.73  # cosine similarity, row problem text vs item prompt (the second view)
    ngram_size: int = 10  # tokens (words and punctuation marks, lower-cased)
    ngram_min: int = 4  # item fields with fewer n-grams are too short to judge by overlap
    ngram_max_df: int = 3  # n-grams shared by more benchmark problems are boilerplate, not evidence
    top_k: int = 20  # benchmark items whose tests the execution layer runs per row
    agreement: float = 0.9  # share of perturbed inputs on which a passing function must match the canonical one
    # A function the solver wrote counts only against the items closest in wording: among its first solver_top_k
    # candidates, summed cosine (description + prompt views) >= solver_min_similarity.
    solver_top_k: int = 15
    solver_min_similarity: float = 0.7
    solver_attempts: int = 2  # functions the solver writes per row at most (the first greedy, then sampled)
    solver_confirmations: int = 2  # attempts whose functions pass the same item, for an item far from the wording
    # Wall clock per program. Benchmark tests can be slow by themselves: Mbpp/123's canonical solution needs 2.4 s
    # for its own tests on an idle 2-core machine, and 5 s timed it out when the machine was busy.
    exec_timeout_s: float = 10.0
    layers: tuple[str, ...] = LAYERS

    def __post_init__(self) -> None:
        unknown = set(self.layers) - set(LAYERS)
        if unknown:
            raise ValueError(f"unknown decontamination layers {sorted(unknown)}: choose from {', '.join(LAYERS)}")
        if not 0 < self.ngram_threshold <= 1 or not all(-1 <= t <= 1 for t in (self.embedding_threshold,
                                                                                self.prompt_threshold)):
            raise ValueError("ngram_threshold must be in (0, 1], embedding_threshold and prompt_threshold in [-1, 1]")
        if min(self.top_k, self.ngram_size, self.solver_top_k, self.solver_attempts, self.solver_confirmations) < 1:
            raise ValueError("top_k, ngram_size, solver_top_k, solver_attempts and solver_confirmations must be >= 1")


@dataclass(frozen=True)
class Match:
    """One layer's evidence that a row is a benchmark problem."""

    row: int  # position of the row in the scanned table
    layer: str
    benchmark: str
    task_id: str
    score: float  # n-gram: share of the item field's n-grams; embedding: cosine; execution: 1.0 (tests passed)
    detail: str  # n-gram: the field; embedding: the view (description, prompt); execution: the function, with
    # " (synthesized)" when the solver wrote it


@dataclass(frozen=True)
class ExecutionHit:
    """A row's function that passed a benchmark item's tests."""

    item: int
    function: str  # the binding's label: the function's name, and how its arguments were adapted
    rank: int  # the item's place among the row's candidates (by summed similarity of both views)
    similarity: float  # that summed similarity (description + prompt view cosines, so up to 2)
    agreement: float  # share of perturbed inputs on which it matched the canonical solution (-1: check failed)
    attempt: int = -1  # the solver's attempt that wrote the function (-1: the row's own solution)


@dataclass
class LayerScores:
    """The raw best score of each layer for every row (thresholds not yet applied): what calibration sweeps."""

    ngram: list[tuple[float, int, str]] = field(default_factory=list)  # (score, item, field)
    embedding: np.ndarray | None = None  # rows x items cosine similarities to the item descriptions
    embedding_prompt: np.ndarray | None = None  # rows x items cosine similarities to the item prompts
    execution_hits: list[list[ExecutionHit]] = field(default_factory=list)  # per row, every item its code passed
    execution: list[ExecutionHit | None] = field(default_factory=list)  # per row, the hit that counts (settings)
    synthesized: dict[int, str | None] = field(default_factory=dict)  # row -> the solver's code (None: no answer)


def tokens(text: str | None) -> list[str]:
    return _TOKEN.findall((text or "").lower())


def _ngrams(toks: Sequence[str], n: int) -> set[int]:
    return {hash(tuple(toks[i:i + n])) for i in range(len(toks) - n + 1)}


def row_text(instruction: str | None, solution: str | None) -> str:
    return f"{instruction or ''}\n{solution or ''}"


class BenchmarkIndex:
    """Benchmark items with what each layer needs: n-gram postings, description and prompt embeddings, entry
    arities."""

    def __init__(self, items: Sequence[BenchmarkItem], embed: Callable[[Sequence[str]], np.ndarray] | None,
                 ngram_size: int = 10, ngram_max_df: int = 3, ngram_min: int = 4) -> None:
        if not items:
            raise ValueError("no benchmark items to decontaminate against")
        self.items = list(items)
        self.n, self.ngram_min = ngram_size, ngram_min
        self.arities = [entry_arity(it) for it in self.items]
        self._build_ngrams(ngram_max_df)
        self.vectors = embed([it.description for it in self.items]) if embed is not None else None
        self.prompt_vectors = embed([it.prompt for it in self.items]) if embed is not None else None

    @classmethod
    def for_settings(cls, items, embed, settings: DecontamSettings) -> BenchmarkIndex:
        return cls(items, embed if (EMBEDDING in settings.layers or EXECUTION in settings.layers) else None,
                   settings.ngram_size, settings.ngram_max_df, settings.ngram_min)

    def _build_ngrams(self, max_df: int) -> None:
        # Document frequency counts distinct problems (an item and its "plus" variant share a description).
        grams: list[dict[str, set[int]]] = []
        problems_with: dict[int, set[str]] = defaultdict(set)
        for item in self.items:
            per_field = {f: _ngrams(tokens(getattr(item, f)), self.n) for f in NGRAM_FIELDS}
            grams.append(per_field)
            key = " ".join(item.description.split()).lower()
            for g in set().union(*per_field.values()):
                problems_with[g].add(key)
        common = {g for g, keys in problems_with.items() if len(keys) > max_df}
        self.postings: dict[int, list[tuple[int, int]]] = defaultdict(list)
        self.field_sizes: dict[tuple[int, int], int] = {}
        for i, per_field in enumerate(grams):
            for f, name in enumerate(NGRAM_FIELDS):
                kept = per_field[name] - common
                if len(kept) < self.ngram_min:
                    continue
                self.field_sizes[(i, f)] = len(kept)
                for g in kept:
                    self.postings[g].append((i, f))

    # -- layer 1 ---------------------------------------------------------------------------------------------------
    def ngram_best(self, text: str) -> tuple[float, int, str]:
        """(score, item, field) of the item field whose n-grams the text covers most; (0, -1, "") when none."""
        hits: dict[tuple[int, int], int] = defaultdict(int)
        for g in _ngrams(tokens(text), self.n):
            for posting in self.postings.get(g, ()):
                hits[posting] += 1
        best, where = 0.0, (-1, -1)
        for key, count in hits.items():
            score = count / self.field_sizes[key]
            if score > best:
                best, where = score, key
        return best, where[0], NGRAM_FIELDS[where[1]] if where[0] >= 0 else ""

    # -- layer 2 ---------------------------------------------------------------------------------------------------
    def similarities(self, row_vectors: np.ndarray, view: str = "description") -> np.ndarray:
        """rows x items cosine similarities to one view of the items: "description" or "prompt"."""
        vectors = {"description": self.vectors, "prompt": self.prompt_vectors}[view]
        if vectors is None:
            raise ValueError("this index was built without embeddings")
        return row_vectors @ vectors.T

    # -- layer 3 ---------------------------------------------------------------------------------------------------
    def candidates(self, sims: np.ndarray, solution, top_k: int) -> list[int]:
        """The top_k most similar items that one of the solution's functions could stand in for."""
        order = np.argsort(-sims)
        picked = []
        for i in order:
            arity = self.arities[i]
            if any(can_bind(f, arity) for f in solution.functions):
                picked.append(int(i))
                if len(picked) == top_k:
                    break
        return picked


def _execution(index: BenchmarkIndex, solutions: Sequence[str | None], sims: np.ndarray, settings: DecontamSettings,
               run_batch: Callable[[list[dict]], list], attempt: int = -1) -> list[list[ExecutionHit]]:
    """Stage 1: the benchmark's tests against each fitting function of the row's solution (top_k items).
    Stage 2, for what passed: agreement with the canonical solution on perturbed test inputs (weak tests).
    Returns, per row, every (item, function) that passed the tests, best candidate rank first."""
    per_row = binding_rows(index, solutions, sims, settings)
    passed = [owner for owner, ok in run_bindings(per_row, settings, run_batch) if ok]
    checks, check_owners = [], []
    for r, rank, i, binding in passed:
        inputs = perturbed_inputs(index.items[i])
        if inputs:
            code = agreement_program(binding.solution, binding.name, index.items[i], inputs)
            checks.append({"id": f"agree:{r}:{i}:{binding.name}", "code": code, "timeout_s": settings.exec_timeout_s})
            check_owners.append((r, rank, i, binding))
    agreed = {}
    for owner, verdict in zip(check_owners, run_batch(checks) if checks else []):
        counts = agreement(verdict.stdout) if verdict.passed else None
        agreed[owner] = -1.0 if counts is None else (counts[1] / counts[0] if counts[0] else 1.0)
    hits: list[list[ExecutionHit]] = [[] for _ in solutions]
    for r, rank, i, binding in passed:
        hits[r].append(ExecutionHit(i, binding.label, rank, float(sims[r, i]),
                                    agreed.get((r, rank, i, binding), 1.0), attempt))
    for row_hits in hits:
        row_hits.sort(key=lambda h: h.rank)
    return hits


def binding_rows(index: BenchmarkIndex, solutions: Sequence[str | None], sims: np.ndarray,
                 settings: DecontamSettings) -> list[list[tuple[tuple, dict]]]:
    """Per row that has candidates, its ((row, rank, item, binding), program) pairs: the benchmark's tests against
    each binding of the row's functions to each of its top_k items."""
    per_row = []
    for r, solution in enumerate(solutions):
        parsed = parse_solution(solution)
        if parsed is None:
            continue
        row = [((r, rank, i, binding), {"id": f"tests:{r}:{i}:{binding.name}", "code": code,
                                         "timeout_s": settings.exec_timeout_s})
               for rank, i in enumerate(index.candidates(sims[r], parsed, settings.top_k))
               for binding, code in binding_programs(parsed, index.items[i], index.arities[i])]
        if row:
            per_row.append(row)
    return per_row


def run_bindings(per_row: list[list[tuple[tuple, dict]]], settings: DecontamSettings,
                  run_batch: Callable[[list[dict]], list]) -> list[tuple[tuple, bool]]:
    """(owner, passed) for every binding program: a row's programs run as one batch (decontam_binding.batch_program),
    and the ones the batch leaves undecided run again on their own."""
    batches = [{"id": f"batch:{row[0][1]['id']}", "timeout_s": settings.exec_timeout_s * BATCH_TIMEOUTS,
                "code": batch_program([program["code"] for _, program in row], settings.exec_timeout_s)}
               if len(row) > 1 else row[0][1] for row in per_row]
    decided: dict[tuple[int, int], bool] = {}  # (row, program) -> passed
    alone = []
    for r, (row, verdict) in enumerate(zip(per_row, run_batch(batches) if batches else [])):
        outcomes = batch_outcomes(verdict.stdout or "", len(row)) if len(row) > 1 else [verdict.passed]
        for k, ((_, program), ok) in enumerate(zip(row, outcomes)):
            if ok is None:
                alone.append(((r, k), program))
            else:
                decided[(r, k)] = ok
    for (where, _), verdict in zip(alone, run_batch([p for _, p in alone]) if alone else []):
        decided[where] = verdict.passed
    return [(owner, decided[(r, k)]) for r, row in enumerate(per_row) for k, (owner, _) in enumerate(row)]


def execution_verdicts(scores: LayerScores, settings: DecontamSettings) -> list[ExecutionHit | None]:
    """Per row, the best-ranked hit that counts under the settings: agreement with the canonical solution, and for
    a function the solver wrote, also a benchmark item among its first solver_top_k candidates that is either close
    in wording (summed similarity >= solver_min_similarity) or passed by functions of solver_confirmations different
    attempts. A buggy synthesized function can collapse into a simpler benchmark's function ("PascalCase to
    kebab-case" done wrong is `str.lower`, Mbpp/477); two independent answers landing on the same item is what a
    story-like paraphrase, far from the benchmark's wording, still shows."""
    out: list[ExecutionHit | None] = []
    for r, row_hits in enumerate(scores.execution_hits):
        agreed = [h for h in row_hits if h.agreement >= settings.agreement]
        if r not in scores.synthesized:
            out.append(agreed[0] if agreed else None)
            continue
        attempts: dict[int, set[int]] = {}
        for h in agreed:
            attempts.setdefault(h.item, set()).add(h.attempt)
        out.append(next((h for h in agreed if h.rank < settings.solver_top_k and (
            h.similarity >= settings.solver_min_similarity
            or len(attempts[h.item]) >= settings.solver_confirmations)), None))
    return out


def _synthesize(index: BenchmarkIndex, rows: Sequence[dict], scores: LayerScores, fused: np.ndarray,
                settings: DecontamSettings, run_batch, solve) -> None:
    """The solver writes functions for the rows without one, up to solver_attempts times (the first greedy, later
    ones sampled) for rows whose earlier functions matched nothing; their hits join scores.execution_hits."""
    pending = [r for r, row in enumerate(rows) if needs_solution(row)]
    for attempt in range(settings.solver_attempts):
        if not pending:
            return
        written = solve([rows[r].get("instruction") or "" for r in pending], attempt)
        hits = _execution(index, written, fused[pending], settings, run_batch, attempt)
        for r, code, row_hits in zip(pending, written, hits):
            if code is not None or r not in scores.synthesized:
                scores.synthesized[r] = code
            scores.execution_hits[r] = sorted(scores.execution_hits[r] + row_hits, key=lambda h: h.rank)
        verdicts = execution_verdicts(scores, settings)
        pending = [r for r in pending if verdicts[r] is None]


def needs_solution(row: dict) -> bool:
    """True when the row has no function the execution layer could run (no solution, a syntax error, a script)."""
    return parse_solution(row.get("solution")) is None


def score_layers(index: BenchmarkIndex, rows: Sequence[dict], settings: DecontamSettings,
                 embed: Callable[[Sequence[str]], np.ndarray] | None = None,
                 run_batch: Callable[[list[dict]], list] | None = None,
                 solve: Callable[[list[str], int], list[str | None]] | None = None) -> LayerScores:
    """Every enabled layer's best evidence for every row. rows: dicts with `instruction` and optional `solution`.
    solve: (instructions, attempt) -> code (None where it has none); used for the rows `needs_solution` picks."""
    scores = LayerScores()
    if NGRAM in settings.layers:
        scores.ngram = [index.ngram_best(row_text(r.get("instruction"), r.get("solution"))) for r in rows]
    if EMBEDDING in settings.layers or EXECUTION in settings.layers:
        if embed is None:
            raise ValueError("the embedding and execution layers need an `embed` function (e.g. Embedder.encode)")
        vectors = embed([r.get("instruction") or "" for r in rows])
        empty = np.zeros((0, len(index.items)))
        scores.embedding = index.similarities(vectors) if len(rows) else empty
        scores.embedding_prompt = index.similarities(vectors, "prompt") if len(rows) else empty
    if EXECUTION in settings.layers:
        if run_batch is None:
            raise ValueError("the execution layer needs the sandbox (a CachedRunner's run, e.g. Sandbox.runner().run)")
        # Candidates by both views: either one alone misses the labelled item in its top 10 more often.
        fused = scores.embedding + scores.embedding_prompt
        scores.execution_hits = _execution(index, [r.get("solution") for r in rows], fused, settings, run_batch)
        if solve is not None:
            _synthesize(index, rows, scores, fused, settings, run_batch, solve)
        scores.execution = execution_verdicts(scores, settings)
    return scores


def matches(index: BenchmarkIndex, scores: LayerScores, settings: DecontamSettings) -> list[Match]:
    """Apply the thresholds: one Match per (row, layer) that fired."""
    found = []
    for r, (score, i, field_name) in enumerate(scores.ngram if NGRAM in settings.layers else ()):
        if i >= 0 and score >= settings.ngram_threshold:
            item = index.items[i]
            found.append(Match(r, NGRAM, item.benchmark, item.task_id, round(float(score), 4), field_name))
    if EMBEDDING in settings.layers and scores.embedding is not None and scores.embedding.size:
        # The description view first (the stronger evidence: a copy or close rewording), else the prompt view.
        views = [(scores.embedding, settings.embedding_threshold, "description")]
        if scores.embedding_prompt is not None and scores.embedding_prompt.size:
            views.append((scores.embedding_prompt, settings.prompt_threshold, "prompt"))
        for r in range(len(scores.embedding)):
            for sims, threshold, view in views:
                i = int(sims[r].argmax())
                if float(sims[r, i]) >= threshold:
                    item = index.items[i]
                    found.append(Match(r, EMBEDDING, item.benchmark, item.task_id, round(float(sims[r, i]), 4),
                                       view))
                    break
    for r, hit in enumerate(execution_verdicts(scores, settings) if EXECUTION in settings.layers else ()):
        if hit is not None:
            item = index.items[hit.item]
            detail = f"{hit.function} (synthesized)" if r in scores.synthesized else hit.function
            found.append(Match(r, EXECUTION, item.benchmark, item.task_id, 1.0, detail))
    return sorted(found, key=lambda m: (m.row, LAYERS.index(m.layer)))


def scan(index: BenchmarkIndex, rows: Sequence[dict], settings: DecontamSettings = DecontamSettings(),
         embed: Callable[[Sequence[str]], np.ndarray] | None = None,
         run_batch: Callable[[list[dict]], list] | None = None,
         solve: Callable[[list[str], int], list[str | None]] | None = None) -> list[Match]:
    return matches(index, score_layers(index, rows, settings, embed, run_batch, solve), settings)


def verdicts(n_rows: int, found: Iterable[Match]) -> list[Match | None]:
    """Per row, the match that decides its verdict (strongest layer first), or None when the row is clean."""
    best: list[Match | None] = [None] * n_rows
    for m in found:
        current = best[m.row]
        if current is None or PRECEDENCE.index(m.layer) < PRECEDENCE.index(current.layer):
            best[m.row] = m
    return best
