"""The statistics Magicoder reports for its data, per seed source and generation method so releases and methods can be
compared side by side: the problem-category distribution, instruction and solution token lengths, and each row's
highest similarity to HumanEval before and after decontamination.

    stats = dataset_stats(sft_rows, deduplicated_rows, humaneval_items, embedder.encode, *token_counter(embedder))
    stats.categories["method:oss_instruct"]     # category -> rows
    stats.tokens["source:stdlib"]["solution"]   # count, mean, median, p90, max, bins
    stats.humaneval["all"]["after"]             # rows per similarity bin of 0.05, after decontamination

Pure functions over DataFrames and an `embed` callable (texts -> L2-normalised vectors, e.g. `Embedder.encode`);
every distinct text is embedded once, in one call, and the vectors serve both the category and the HumanEval views.
Groups are `all`, `source:<name>` and `method:<name>`; a table with no rows gives empty groups, never an error.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl

ALL = "all"
OTHER_CATEGORY = "other"

# Our own categories, in the spirit of Magicoder's (its OSS-Instruct problems were assigned to about ten categories
# by the embedding similarity of the problem to a description of each). Phrased as a problem statement, because
# instructions are: on the bundled all-MiniLM-L6-v2 that sorts 23 of 26 hand-labelled instructions right.
CATEGORIES: dict[str, str] = {
    "algorithms and data structures": "A programming problem about algorithms and data structures: sorting and "
                                      "searching lists, graphs, trees, dynamic programming, recursion, stacks, "
                                      "queues, heaps, linked lists and dictionaries.",
    "data science": "A programming problem about data science: analysing tables with pandas DataFrames or numpy "
                    "arrays, computing statistics, plotting charts and training machine learning models.",
    "mathematics": "A programming problem about mathematics: arithmetic, number theory, prime numbers, factorials, "
                   "digits, combinatorics, geometry such as areas and volumes, and evaluating formulas.",
    "string processing": "A programming problem about string and text processing: reversing, splitting, formatting "
                         "or parsing strings, counting characters, vowels or words, palindromes and regular "
                         "expressions.",
    "files and operating system": "Working with files and the operating system: open a file, read its lines, write "
                                  "output files, list a directory, file sizes and paths, run shell commands with "
                                  "subprocess.",
    "web and networking": "A programming problem about the web and networking: HTTP requests, REST APIs, URLs, HTML "
                          "pages, sockets, and web servers or frameworks.",
    "databases and SQL": "A programming problem about databases and SQL: writing queries, creating tables, inserting "
                         "and selecting records, joins, schemas and ORM models.",
    "concurrency": "A programming problem about concurrency: threads, locks, queues, multiprocessing, asyncio "
                   "coroutines and running tasks in parallel.",
    "object-oriented design": "A programming problem about object-oriented design: defining classes with methods and "
                              "attributes, inheritance, interfaces and design patterns.",
    "testing and debugging": "Testing and debugging: write unit tests, or find and fix the bug in a function that "
                             "raises an error.",
}
# Below this cosine to every description a row is `other`. Measured with the bundled all-MiniLM-L6-v2 on the 664
# HumanEval + MBPP problem descriptions (every one a programming problem): 99% score at least 0.12 with their nearest
# category (median 0.30), while non-programming sentences ("What is the capital of France?", a cake recipe, a plot
# summary) score 0.06-0.09. So `other` marks rows that are off-topic or too vague to place, not merely short ones.
CATEGORY_FLOOR = 0.12

SIMILARITY_EDGES = tuple(round(0.05 * i, 2) for i in range(21))  # 0, 0.05, ..., 1: Magicoder's figure's bins
TOKEN_EDGES = (0, 32, 64, 128, 256, 512, 1024, 2048)  # the last bin is open: 2048 and more
TEXT_FIELDS = ("instruction", "solution")


@dataclass
class DatasetStats:
    """Everything the card's "Statistics (Magicoder's)" section and the asset metadata report."""

    groups: list[str]  # all, source:<name>..., method:<name>... (of the SFT rows)
    categories: dict[str, dict[str, int]]  # group -> category (CATEGORIES order, then other) -> rows
    tokens: dict[str, dict[str, dict]]  # group -> instruction|solution -> count, mean, median, p90, max, bins
    tokenizer: str  # what counted the tokens
    humaneval: dict[str, dict]  # group -> before/after: rows per similarity bin, summary
    humaneval_tfidf: dict[str, dict] = field(default_factory=dict)  # the same with TF-IDF cosine (when sklearn)
    nearest: list[dict] = field(default_factory=list)  # the SFT rows closest to HumanEval: id, task, similarity
    humaneval_problems: int = 0

    def as_json(self) -> dict[str, dict]:
        """Metadata-ready views: categories with shares, token lengths, HumanEval similarity."""
        shares = {g: {c: {"rows": n, "share": round(n / total, 4) if (total := sum(counts.values())) else 0.0}
                      for c, n in counts.items()} for g, counts in self.categories.items()}
        return {"problem_categories": shares,
                "token_lengths": {"tokenizer": self.tokenizer, "bins": token_bin_labels(), "groups": self.tokens},
                "humaneval_similarity": {"bins": similarity_bin_labels(), "problems": self.humaneval_problems,
                                         "embedding": self.humaneval, "tfidf": self.humaneval_tfidf,
                                         "nearest_after": self.nearest}}


# --- groups and embeddings ----------------------------------------------------------------------------------------

GROUP_COLUMNS = ("source", "method")


def ordered_groups(groups) -> list[str]:
    """`all` first, then the source groups, then the method groups, each sorted by name."""
    def key(group: str) -> tuple[int, str]:
        column = group.split(":", 1)[0]
        return (0 if group == ALL else 1 + GROUP_COLUMNS.index(column) if column in GROUP_COLUMNS else 3), group

    return sorted(set(groups), key=key)


def group_masks(df: pl.DataFrame) -> dict[str, np.ndarray]:
    """`all`, then `source:<name>` and `method:<name>` (sorted) -> boolean row mask."""
    masks = {ALL: np.ones(len(df), dtype=bool)}
    for column in GROUP_COLUMNS:
        if column not in df.columns or not len(df):
            continue
        values = np.asarray(df[column].cast(pl.Utf8).fill_null("?").to_list(), dtype=object)
        for value in sorted(set(values)):
            masks[f"{column}:{value}"] = values == value
    return masks


def embed_distinct(embed: Callable[[Sequence[str]], np.ndarray], texts: Sequence[str]) -> dict[str, np.ndarray]:
    """text -> vector for every distinct text, in one call of `embed` (none when there is nothing to embed)."""
    distinct = list(dict.fromkeys(texts))
    if not distinct:
        return {}
    vectors = np.asarray(embed(distinct), dtype=np.float32)
    return dict(zip(distinct, vectors))


def _texts(df: pl.DataFrame, column: str) -> list[str]:
    return [t or "" for t in df[column].to_list()] if len(df) and column in df.columns else []


def _stack(vectors: dict[str, np.ndarray], texts: Sequence[str], dim: int) -> np.ndarray:
    return np.stack([vectors[t] for t in texts]) if texts else np.zeros((0, dim), dtype=np.float32)


def max_cosine(rows: np.ndarray, references: np.ndarray, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """(each row's highest cosine to any reference, the index of that reference); rows and references normalised
    (dense arrays, or scipy sparse matrices such as TF-IDF's). In chunks, so memory stays rows x chunk."""
    if rows.shape[0] == 0 or references.shape[0] == 0:
        return np.zeros(rows.shape[0], dtype=np.float32), np.zeros(rows.shape[0], dtype=np.int64)
    best, where = [], []
    for start in range(0, rows.shape[0], chunk):
        sims = rows[start:start + chunk] @ references.T
        sims = sims.toarray() if hasattr(sims, "toarray") else np.asarray(sims)
        where.append(sims.argmax(axis=1))
        best.append(sims[np.arange(sims.shape[0]), where[-1]])
    return np.concatenate(best).astype(np.float32), np.concatenate(where)


# --- problem categories -------------------------------------------------------------------------------------------

def assign_categories(vectors: np.ndarray, category_vectors: np.ndarray, names: Sequence[str] = tuple(CATEGORIES),
                      floor: float = CATEGORY_FLOOR) -> list[str]:
    """The nearest category's name for each row vector, `other` when no category reaches `floor`."""
    best, where = max_cosine(vectors, category_vectors)
    return [names[j] if s >= floor else OTHER_CATEGORY for s, j in zip(best.tolist(), where.tolist())]


def category_counts(labels: Sequence[str], masks: dict[str, np.ndarray]) -> dict[str, dict[str, int]]:
    """group -> category -> rows, every category listed (zeros too) in CATEGORIES order, then other."""
    labels = np.asarray(labels, dtype=object)
    return {g: {c: int((labels[m] == c).sum()) if len(labels) else 0 for c in (*CATEGORIES, OTHER_CATEGORY)}
            for g, m in masks.items()}


# --- token lengths ------------------------------------------------------------------------------------------------

def token_bin_labels(edges: Sequence[int] = TOKEN_EDGES) -> list[str]:
    return [f"{lo}-{hi - 1}" for lo, hi in zip(edges, edges[1:])] + [f"{edges[-1]}+"]


def length_summary(lengths: Sequence[int], edges: Sequence[int] = TOKEN_EDGES) -> dict:
    """count, mean, median, p90, max (None without rows) and rows per bin of `edges` (the last bin open)."""
    values = np.asarray(lengths, dtype=np.int64)
    bins = np.bincount(np.searchsorted(edges, values, side="right") - 1, minlength=len(edges))[:len(edges)]
    if not len(values):
        return {"count": 0, "mean": None, "median": None, "p90": None, "max": None, "bins": bins.tolist()}
    return {"count": len(values), "mean": round(float(values.mean()), 1), "median": float(np.median(values)),
            "p90": round(float(np.percentile(values, 90)), 1), "max": int(values.max()), "bins": bins.tolist()}


def token_lengths(df: pl.DataFrame, count_tokens: Callable[[Sequence[str]], Sequence[int]],
                  masks: dict[str, np.ndarray]) -> dict[str, dict[str, dict]]:
    """group -> instruction|solution -> `length_summary` of the token counts."""
    counts = {f: np.asarray(count_tokens(texts) if (texts := _texts(df, f)) else [], dtype=np.int64)
              for f in TEXT_FIELDS}
    return {g: {f: length_summary(counts[f][m] if len(counts[f]) else []) for f in TEXT_FIELDS}
            for g, m in masks.items()}


def token_counter(embedder) -> tuple[Callable[[Sequence[str]], list[int]], str]:
    """(count tokens of texts, what the card calls it) with the tokenizer of `embedder` (a TextEmbedder): every
    token of the text, no truncation at the model's input limit, no special tokens. If that tokenizer cannot be
    loaded, whitespace-separated words, and the name says so."""
    try:
        tokenizer = embedder.model.tokenizer
    except Exception as exc:  # a model that does not load: the card still gets numbers, labelled for what they are
        reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        return (lambda texts: [len(t.split()) for t in texts],
                f"whitespace-separated words (the embedder's tokenizer did not load: {reason})")

    def count(texts: Sequence[str]) -> list[int]:
        ids = tokenizer(list(texts), add_special_tokens=False, truncation=False, verbose=False)["input_ids"]
        return [len(i) for i in ids]

    model = getattr(embedder, "identity", "").split("|")[0] or getattr(tokenizer, "name_or_path", "?")
    return count, f"{type(tokenizer).__name__} of the embedder ({model}), untruncated, without special tokens"


# --- similarity to HumanEval --------------------------------------------------------------------------------------

def similarity_bin_labels() -> list[str]:
    return [f"{lo:.2f}-{hi:.2f}" for lo, hi in zip(SIMILARITY_EDGES, SIMILARITY_EDGES[1:])]


def similarity_histogram(similarities: np.ndarray) -> list[int]:
    """Rows per bin of 0.05 over [0, 1]: a negative cosine counts in the first bin, 1.0 in the last."""
    index = np.clip(np.floor(np.asarray(similarities, dtype=np.float64) * 20 + 1e-9), 0, 19).astype(int)
    return np.bincount(index, minlength=20).tolist()


def _similarity_summary(similarities: np.ndarray) -> dict:
    if not len(similarities):
        return {"rows": 0, "mean": None, "p90": None, "max": None, "bins": [0] * 20}
    return {"rows": len(similarities), "mean": round(float(similarities.mean()), 4),
            "p90": round(float(np.percentile(similarities, 90)), 4), "max": round(float(similarities.max()), 4),
            "bins": similarity_histogram(similarities)}


def similarity_by_group(before: np.ndarray, before_masks: dict[str, np.ndarray], after: np.ndarray,
                        after_masks: dict[str, np.ndarray]) -> dict[str, dict]:
    """group (of either table) -> before/after: rows, mean, p90, max and rows per similarity bin."""
    empty = np.zeros(0, dtype=np.float32)
    groups = ordered_groups([ALL, *before_masks, *after_masks])
    return {g: {"before": _similarity_summary(before[before_masks[g]] if g in before_masks else empty),
                "after": _similarity_summary(after[after_masks[g]] if g in after_masks else empty)}
            for g in groups}


def humaneval_references(items) -> tuple[list[str], list[str]]:
    """(texts, task id of each) of the HumanEval items among `items` (BenchmarkItems): each problem's prompt (the
    signature and docstring a model is shown) and its prose description, so a row matching either form is near."""
    chosen = [i for i in items if i.benchmark == "humaneval"]
    return [t for i in chosen for t in (i.prompt, i.description)], [i.task_id for i in chosen for _ in range(2)]


def tfidf_max_similarity(row_sets: Sequence[Sequence[str]], references: Sequence[str]) -> list[np.ndarray] | None:
    """For each set of rows, each row's highest TF-IDF cosine to the references (Magicoder's measure), with one
    vocabulary and IDF fitted on the references and every row set together, so the sets compare; None without
    scikit-learn."""
    try:
        from sklearn.feature_extraction.text import TfidfVectorizer
    except ImportError:
        return None
    if not references or not any(row_sets):
        return [np.zeros(len(rows), dtype=np.float32) for rows in row_sets]
    vectorizer = TfidfVectorizer().fit(list(dict.fromkeys([*references, *(t for rows in row_sets for t in rows)])))
    reference_vecs = vectorizer.transform(references)
    return [max_cosine(vectorizer.transform(rows), reference_vecs)[0] if rows else np.zeros(0, dtype=np.float32)
            for rows in row_sets]


# --- plots -------------------------------------------------------------------------------------------------------

def token_plot_panels(stats: DatasetStats, most: int = 8) -> dict[str, dict[str, list[float]]]:
    """instruction|solution -> group -> % of the group's rows per token bin: all rows, and each source and method
    when there are several of that kind (at most `most` lines a panel)."""
    kinds = {c: [g for g in stats.tokens if g.startswith(f"{c}:")] for c in GROUP_COLUMNS}
    groups = [ALL, *(g for c in GROUP_COLUMNS if len(kinds[c]) > 1 for g in kinds[c])][:most]
    return {f: {g: [100 * n / s["count"] for n in s["bins"]] if (s := stats.tokens[g][f])["count"] else
                [0.0] * len(s["bins"]) for g in groups} for f in TEXT_FIELDS}


def similarity_plot_panels(stats: DatasetStats, most: int = 9) -> dict[str, dict[str, list[int]]]:
    """group -> before/after -> rows per similarity bin, for at most `most` groups (all rows first)."""
    return {g: {w: v[w]["bins"] for w in ("before", "after")} for g, v in list(stats.humaneval.items())[:most]}


# --- all of it ----------------------------------------------------------------------------------------------------

def dataset_stats(after: pl.DataFrame, before: pl.DataFrame, humaneval, embed: Callable[[Sequence[str]], np.ndarray],
                  count_tokens: Callable[[Sequence[str]], Sequence[int]], tokenizer: str,
                  nearest: int = 5) -> DatasetStats:
    """`after`: the SFT rows (instruction, solution, source, method, id or dialogue_id); `before`: the rows before
    decontamination (deduplicated_dialogues of the same partitions: instruction, source, method); `humaneval`:
    BenchmarkItems (HumanEval's are used); `embed`: texts -> normalised vectors; `count_tokens`: texts -> token
    counts, `tokenizer` its name for the card. `nearest`: how many of the SFT rows closest to HumanEval to list."""
    references, tasks = humaneval_references(humaneval)
    after_texts, before_texts = _texts(after, "instruction"), _texts(before, "instruction")
    categories = list(CATEGORIES.values())
    vectors = embed_distinct(embed, [*categories, *references, *after_texts, *before_texts]) \
        if after_texts or before_texts else {}
    dim = len(next(iter(vectors.values()))) if vectors else 0
    after_vecs, before_vecs = _stack(vectors, after_texts, dim), _stack(vectors, before_texts, dim)
    reference_vecs = _stack(vectors, references, dim) if vectors else np.zeros((0, 0), dtype=np.float32)

    after_masks, before_masks = group_masks(after), group_masks(before)
    labels = assign_categories(after_vecs, _stack(vectors, categories, dim)) if after_texts else []
    after_sim, after_ref = max_cosine(after_vecs, reference_vecs)
    before_sim, _ = max_cosine(before_vecs, reference_vecs)
    tfidf = tfidf_max_similarity([before_texts, after_texts], references)
    ids = _texts(after, "id" if "id" in after.columns else "dialogue_id")
    closest = [{"id": ids[i], "task_id": tasks[after_ref[i]], "similarity": round(float(after_sim[i]), 4),
                "instruction": after_texts[i][:200]} for i in np.argsort(-after_sim, kind="stable")[:nearest]]
    return DatasetStats(
        groups=list(after_masks),
        categories=category_counts(labels, after_masks),
        tokens=token_lengths(after, count_tokens, after_masks),
        tokenizer=tokenizer,
        humaneval=similarity_by_group(before_sim, before_masks, after_sim, after_masks),
        humaneval_tfidf=similarity_by_group(tfidf[0], before_masks, tfidf[1], after_masks) if tfidf else {},
        nearest=closest,
        humaneval_problems=len(references) // 2,
    )
