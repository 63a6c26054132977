"""Code-Feedback's single-turn packing: verified single-turn dialogues whose problems are close in embedding space,
joined into one multi-turn conversation.

    result = run(MethodInputs(dialogues=rows), PackingConfig(), ctx)   # ctx.encode: the embedder

1. `single_turn_parents`: the parents whose first answer passed in one exchange (others are skipped and counted);
2. `form_groups`: seeded greedy grouping by the cosine of the instructions' embeddings with each group's anchor;
3. `_verify`: every member's solution is rerun with its tests in the sandbox, then each surviving group's joined
   solution with its joined tests (the row's `solution` must pass its `tests`, and two members may define the same
   name);
4. `packed_row`: one schemas.DIALOGUES row per group. No teacher is asked anything.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from dataclasses import dataclass

import numpy as np

from assets.fingerprints import fingerprint, record_config
from assets.generate.config import REFERENCE_OUTPUTS
from assets.generate.methods.base import MethodContext, MethodInputs, MethodResult, dialogue_id, provenance
from assets.generate.methods.config import PackingConfig
from assets.generate.programs import program_with_tests, verdict_row
from resources.sandbox import Verdict

METHOD = "single_turn_packing"
PROMPT_VERSION = "packing"
STAGE = "method_dialogues"


@dataclass
class Group:
    members: list[int]  # indexes into the parents, anchor first, then by falling similarity
    similarities: list[float]  # each member's cosine with the anchor (1.0 for the anchor itself)


def single_turn_exchange(row: dict) -> list[dict] | None:
    """The [user, assistant] exchange of a dialogue whose first and only answer passed; None for any other.

    An AIEV-complete dialogue ends with the passing run's turn after the answer; that tail is left out, so the packed
    conversation alternates user / assistant. A dialogue that continues earlier turns (a follow-up's context) does
    not start with its answer's exchange and is not single-turn."""
    messages = row.get("messages") or []
    if row.get("turns") != 1 or row.get("passed_turn") != 1 or len(messages) < 2:
        return None
    if [m["role"] for m in messages[:2]] != ["user", "assistant"]:
        return None
    if any(m["role"] == "assistant" for m in messages[2:]):
        return None
    return [{"role": m["role"], "content": m["content"]} for m in messages[:2]]


def single_turn_parents(dialogues: list[dict]) -> tuple[list[dict], int]:
    """(the single-turn parents in a stable order, how many other dialogues were skipped)."""
    parents = [row for row in dialogues if single_turn_exchange(row) is not None]
    parents.sort(key=lambda row: (row.get("problem_id") or "", row.get("dialogue_id") or ""))
    return parents, len(dialogues) - len(parents)


def form_groups(parents: list[dict], vectors: np.ndarray, config: PackingConfig) -> tuple[list[Group], list[int]]:
    """(groups of 2..max_group parents, the indexes of parents left alone), formed greedily in a seeded order.

    The first unused parent in that order anchors a group and takes the unused parents most similar to it (cosine
    >= min_similarity; ties by the order), skipping any whose instruction or problem repeats a member's."""
    order = list(range(len(parents)))
    random.Random(config.seed).shuffle(order)
    rank = np.empty(len(parents), dtype=np.int64)
    rank[order] = np.arange(len(parents))
    used = np.zeros(len(parents), dtype=bool)
    groups: list[Group] = []
    alone: list[int] = []
    for anchor in order:
        if used[anchor]:
            continue
        used[anchor] = True
        similarity = vectors @ vectors[anchor]
        near = np.flatnonzero(~used & (similarity >= config.min_similarity))
        candidates = near[np.lexsort((rank[near], -similarity[near]))]  # most similar first, ties by the order
        group = Group([anchor], [1.0])
        for candidate in candidates:
            if len(group.members) == config.max_group:
                break
            if _repeats_a_member(parents, group.members, candidate):
                continue
            group.members.append(int(candidate))
            group.similarities.append(float(similarity[candidate]))
        if len(group.members) < 2:
            alone.append(anchor)
            continue
        used[group.members] = True
        groups.append(group)
    return groups, alone


def _repeats_a_member(parents: list[dict], members: list[int], candidate: int) -> bool:
    new = parents[candidate]
    return any((parents[m].get("instruction") or "").strip() == (new.get("instruction") or "").strip()
               or parents[m].get("problem_id") == new.get("problem_id") for m in members)


def _member_program(parent: dict) -> str:
    return program_with_tests(parent.get("solution") or "", parent.get("tests") or "")


def _joined(parents: list[dict], key: str, separator: str) -> str:
    return separator.join((p.get(key) or "").strip() for p in parents)


def _tests_source(members: list[dict]) -> str | None:
    """The weakest of the members' tests sources: reference_outputs if any member's expected values came from its
    reference, otherwise the first member's."""
    sources = [m.get("tests_source") for m in members]
    return REFERENCE_OUTPUTS if REFERENCE_OUTPUTS in sources else sources[0]


def packed_row(members: list[dict], verdicts: list[dict], config_fp: str) -> dict:
    """The schemas.DIALOGUES row of `members` joined in order; `verdicts`: the members' rerun verdicts so far."""
    first = members[0]
    problem_ids = [m.get("problem_id") or "" for m in members]
    parent_id = ",".join(problem_ids)
    turns = len(members)
    passed = len(verdicts) == turns and all(v["status"] == "passed" for v in verdicts)
    return {
        "dialogue_id": dialogue_id(METHOD, parent_id, config_fp),
        "problem_id": hashlib.sha256(",".join(sorted(problem_ids)).encode()).hexdigest()[:16],
        # Provenance, the licence included, is the first member's; the others' stay reachable through parent_id.
        **provenance(first),
        "method": METHOD,
        "parent_id": parent_id,
        "teacher_model": first.get("teacher_model"),
        "programmer_model": first.get("programmer_model"),
        "prompt_version": PROMPT_VERSION,
        "config_fingerprint": config_fp,
        "feedback_mode": None,
        "instruction": _joined(members, "instruction", "\n\n"),
        "solution": _joined(members, "solution", "\n\n\n"),
        "tests": _joined(members, "tests", "\n\n"),
        "tests_source": _tests_source(members),
        "messages": [turn for m in members for turn in single_turn_exchange(m)],
        "turns": turns,
        "passed_turn": turns if passed else None,
        "verdicts": verdicts,
        "prompt_tokens": sum(m.get("prompt_tokens") or 0 for m in members),
        "completion_tokens": sum(m.get("completion_tokens") or 0 for m in members),
    }


@dataclass
class _Outcome:
    rows: list[dict]
    rejects: list[dict]
    counts: Counter
    kept: list[Group]


def _verify(parents: list[dict], groups: list[Group], config_fp: str, ctx: MethodContext) -> _Outcome:
    """Members rerun in one batch (a failing member leaves its group), then each group of two or more survivors as
    one joined program in a second batch."""
    members = [m for g in groups for m in g.members]
    runs = ctx.runner.run([{"id": f"member:{m}", "code": _member_program(parents[m])} for m in members])
    verdict_of: dict[int, Verdict] = dict(zip(members, runs))
    out = _Outcome([], [], Counter(), [])

    def reject(indexes: list[int], reason: str) -> None:
        rows = [parents[i] for i in indexes]
        verdicts = [verdict_row(verdict_of[i], turn) for turn, i in enumerate(indexes, start=1)]
        out.rejects.append({**packed_row(rows, verdicts, config_fp), "reason": reason})
        out.counts[reason] += 1

    survivors: list[Group] = []
    for group in groups:
        for m in group.members:
            if not verdict_of[m].passed:
                reject([m], "member_fails_rerun")
        kept = [(m, s) for m, s in zip(group.members, group.similarities) if verdict_of[m].passed]
        if len(kept) < 2:
            for m, _ in kept:
                reject([m], "no_similar_partner")
            continue
        survivors.append(Group([m for m, _ in kept], [s for _, s in kept]))

    joined = ctx.runner.run([{"id": f"group:{n}", "code": program_with_tests(
        _joined([parents[m] for m in g.members], "solution", "\n\n\n"),
        _joined([parents[m] for m in g.members], "tests", "\n\n"))} for n, g in enumerate(survivors)])
    for group, verdict in zip(survivors, joined):
        if not verdict.passed:
            reject(group.members, "joined_program_fails")
            continue
        verdicts = [verdict_row(verdict_of[m], turn) for turn, m in enumerate(group.members, start=1)]
        out.rows.append(packed_row([parents[m] for m in group.members], verdicts, config_fp))
        out.kept.append(group)
    return out


def _mean_similarity(groups: list[Group]) -> float:
    """The mean cosine of the kept groups' members (anchor excluded) with their anchor; 0.0 without groups."""
    values = [s for g in groups for s in g.similarities[1:]]
    return round(float(np.mean(values)), 4) if values else 0.0


def run(inputs: MethodInputs, config: PackingConfig, ctx: MethodContext) -> MethodResult:
    """Packed dialogues of the single-turn parents in `inputs.dialogues`, verified in the sandbox."""
    if ctx.encode is None:
        raise ValueError(f"{METHOD} needs the embedder (MethodContext.encode) to find similar problems; none was given")
    config_fp = record_config(fingerprint(config, METHOD), ctx.home, stage=STAGE, method=METHOD, config=config)
    parents, skipped = single_turn_parents(inputs.dialogues)
    groups, alone = [], []
    if parents:
        vectors = np.asarray(ctx.encode([p.get("instruction") or "" for p in parents]), dtype=np.float32)
        groups, alone = form_groups(parents, vectors, config)
    outcome = _verify(parents, groups, config_fp, ctx) if groups else _Outcome([], [], Counter(), [])
    for index in alone:
        outcome.rejects.append({**packed_row([parents[index]], [], config_fp), "reason": "no_similar_partner"})
        outcome.counts["no_similar_partner"] += 1
    ctx.info(f"{METHOD}: {len(parents)} single-turn parents ({skipped} others skipped), {len(groups)} groups formed, "
             f"{len(outcome.rows)} packed dialogues verified")
    sizes = Counter(len(g.members) for g in outcome.kept)
    return MethodResult(outcome.rows, outcome.rejects, outcome.counts,
                        extra={"groups": len(outcome.rows), "group_sizes": dict(sorted(sizes.items())),
                               "multi_turn_parents_skipped": skipped,
                               "mean_similarity": _mean_similarity(outcome.kept)})
