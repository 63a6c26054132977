"""Duplicate problems: exact (after normalisation), MinHash LSH over word shingles, and embedding cosine.

    dups = find_duplicates(new_ids, new_texts, earlier_ids, earlier_texts, embed=embedder.encode)

Rows are judged in order against everything kept before them: the earlier rows (always kept) and the new rows
already kept. Each stage sees only the rows the stages before it kept, so a row is rejected once, for the cheapest
reason, and always names the kept row it duplicates.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from datasketch import LeanMinHash, MinHash, MinHashLSH

EXACT, MINHASH, EMBEDDING = "exact", "minhash", "embedding"
REASONS = (EXACT, MINHASH, EMBEDDING)
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class DedupSettings:
    """Defaults: see the dedup section of benchmarks/calibrate_decontam.py's output for how they were chosen."""

    minhash_threshold: float = 0.7  # estimated Jaccard similarity of word 5-gram shingles
    embedding_threshold: float = 0.95  # cosine similarity of the problem texts' embeddings
    shingle_words: int = 5
    num_perm: int = 128
    layers: tuple[str, ...] = REASONS

    def __post_init__(self) -> None:
        for name in ("minhash_threshold", "embedding_threshold"):
            value = getattr(self, name)
            if not 0.0 < value <= 1.0:
                raise ValueError(f"{name} must be in (0, 1], got {value}")
        unknown = set(self.layers) - set(REASONS)
        if unknown:
            raise ValueError(f"unknown dedup layers {sorted(unknown)}: choose from {', '.join(REASONS)}")


@dataclass(frozen=True)
class Duplicate:
    index: int  # position of the rejected row among the new rows
    duplicate_of: str  # id of the kept row it duplicates
    reason: str  # exact | minhash | embedding
    score: float  # 1.0 for exact, estimated Jaccard for minhash, cosine for embedding


def normalize(text: str | None) -> str:
    """Unicode-normalised, case-folded, whitespace-collapsed text: what `exact` compares."""
    return " ".join(unicodedata.normalize("NFKC", text or "").casefold().split())


def shingles(text: str, words: int = 5) -> set[bytes]:
    tokens = _WORD.findall(normalize(text))
    if len(tokens) <= words:
        return {" ".join(tokens).encode()} if tokens else set()
    return {" ".join(tokens[i:i + words]).encode() for i in range(len(tokens) - words + 1)}


def minhashes(texts: Sequence[str], settings: DedupSettings) -> list[LeanMinHash]:
    """One MinHash per text (datasketch's batched update; fixed seed, so runs agree)."""
    sets = [shingles(t, settings.shingle_words) for t in texts]
    return [LeanMinHash(m) for m in MinHash.bulk(sets, num_perm=settings.num_perm, seed=1)]


def _exact(new_texts, earlier_ids, earlier_texts, alive: list[int], new_ids) -> tuple[list[Duplicate], list[int]]:
    seen = {}
    for id_, text in zip(earlier_ids, earlier_texts):
        seen.setdefault(normalize(text), id_)
    dups, kept = [], []
    for i in alive:
        key = normalize(new_texts[i])
        if key in seen:
            dups.append(Duplicate(i, seen[key], EXACT, 1.0))
        else:
            seen[key] = new_ids[i]
            kept.append(i)
    return dups, kept


def _minhash(new_texts, earlier_ids, earlier_texts, alive, new_ids, settings) -> tuple[list[Duplicate], list[int]]:
    lsh = MinHashLSH(threshold=settings.minhash_threshold, num_perm=settings.num_perm)
    hashes: dict[str, tuple[str, LeanMinHash]] = {}
    for j, (id_, m) in enumerate(zip(earlier_ids, minhashes(earlier_texts, settings))):
        key = f"e{j}"
        lsh.insert(key, m, check_duplication=False)
        hashes[key] = (id_, m)
    dups, kept = [], []
    for i, m in zip(alive, minhashes([new_texts[i] for i in alive], settings)):
        best_key, best = None, 0.0
        for key in lsh.query(m):
            score = m.jaccard(hashes[key][1])
            if score >= settings.minhash_threshold and score > best:
                best_key, best = key, score
        if best_key is not None:
            dups.append(Duplicate(i, hashes[best_key][0], MINHASH, float(best)))
        else:
            key = f"n{i}"
            lsh.insert(key, m, check_duplication=False)
            hashes[key] = (new_ids[i], m)
            kept.append(i)
    return dups, kept


def _embedding(new_texts, earlier_ids, earlier_texts, alive, new_ids, settings, embed,
               block: int = 1024) -> tuple[list[Duplicate], list[int]]:
    if not alive:
        return [], []
    new_vecs = embed([new_texts[i] for i in alive])
    old_vecs = embed(list(earlier_texts)) if len(earlier_texts) else np.zeros((0, new_vecs.shape[1]), np.float32)
    threshold = settings.embedding_threshold
    kept_mask = np.zeros(len(alive), dtype=bool)
    dups, kept = [], []
    for start in range(0, len(alive), block):
        stop = min(start + block, len(alive))
        chunk = new_vecs[start:stop]
        old = chunk @ old_vecs.T if len(old_vecs) else None
        new = chunk @ new_vecs[:stop].T
        for r in range(stop - start):
            pos = start + r
            best_id, best = None, -1.0
            if old is not None:
                j = int(np.argmax(old[r]))
                if old[r, j] >= threshold:
                    best_id, best = earlier_ids[j], float(old[r, j])
            earlier_new = np.where(kept_mask[:pos], new[r, :pos], -1.0)
            if pos:
                j = int(np.argmax(earlier_new))
                if earlier_new[j] >= threshold and earlier_new[j] > best:
                    best_id, best = new_ids[alive[j]], float(earlier_new[j])
            if best_id is not None:
                dups.append(Duplicate(alive[pos], best_id, EMBEDDING, min(best, 1.0)))
            else:
                kept_mask[pos] = True
                kept.append(alive[pos])
    return dups, kept


def find_duplicates(new_ids: Sequence[str], new_texts: Sequence[str], earlier_ids: Sequence[str] = (),
                    earlier_texts: Sequence[str] = (), embed: Callable[[Sequence[str]], np.ndarray] | None = None,
                    settings: DedupSettings = DedupSettings()) -> list[Duplicate]:
    """The new rows that duplicate an earlier row or a new row before them, sorted by index."""
    if len(new_ids) != len(new_texts) or len(earlier_ids) != len(earlier_texts):
        raise ValueError("ids and texts must have the same length")
    new_ids = [str(i) for i in new_ids]
    earlier_ids = [str(i) for i in earlier_ids]
    alive = list(range(len(new_ids)))
    dups: list[Duplicate] = []
    if EXACT in settings.layers:
        found, alive = _exact(new_texts, earlier_ids, earlier_texts, alive, new_ids)
        dups += found
    if MINHASH in settings.layers:
        found, alive = _minhash(new_texts, earlier_ids, earlier_texts, alive, new_ids, settings)
        dups += found
    if EMBEDDING in settings.layers:
        if embed is None:
            raise ValueError("the embedding dedup layer needs an `embed` function (e.g. Embedder.encode)")
        found, alive = _embedding(new_texts, earlier_ids, earlier_texts, alive, new_ids, settings, embed)
        dups += found
    return sorted(dups, key=lambda d: d.index)
