"""The train/test split of an SFT release, by root problem: a problem's roots are found by following parent_id
through the release rows and the problem tables, roots are split by a hash of their id, and a problem goes to test
when any of its roots is a test root. So an evolved, corrected or followed-up version of a test problem never lands
in train, and every dialogue of a problem shares its split.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict

import polars as pl
import pyarrow.parquet as pq

from assets.keys import METHOD_DIALOGUES, OSS_INSTRUCT_PROBLEMS
from resources.home import Home
from resources.store import table_partitions, table_path


def problem_hash(problem_id: str) -> float:
    """A stable number in [0, 1) for a problem."""
    return int(hashlib.sha256(f"split:{problem_id}".encode()).hexdigest()[:13], 16) / 16 ** 13


def split_problems(problem_ids: list[str], test_fraction: float, min_test_problems: int) -> dict[str, str]:
    """problem_id -> train | test. Deterministic: a problem's split depends only on its id and the settings (and,
    through min_test_problems, on the lowest hashes present)."""
    ranked = sorted(set(problem_ids), key=problem_hash)
    test = {p for p in ranked if problem_hash(p) < test_fraction}
    # Keep at least one train problem: a dataset of two problems still trains on one.
    for p in ranked[: max(0, min(min_test_problems, len(ranked) - 1))]:
        test.add(p)
    return {p: "test" if p in test else "train" for p in ranked}


def parent_ids(parent_id: str | None) -> set[str]:
    """The problems a row names as parents (a packed row names several, joined with ",")."""
    return {p.strip() for p in (parent_id or "").split(",") if p.strip()}


def parent_links(*tables: pl.DataFrame) -> dict[str, set[str]]:
    """problem_id -> its parents' problem_ids, over tables with problem_id and parent_id columns."""
    links: dict[str, set[str]] = defaultdict(set)
    for table in tables:
        if not len(table) or "problem_id" not in table.columns or "parent_id" not in table.columns:
            continue
        for problem, parent in table.select("problem_id", "parent_id").unique().iter_rows():
            if problem is not None:
                links[problem] |= parent_ids(parent) - {problem}
    return dict(links)


def merge_links(*many: dict[str, set[str]]) -> dict[str, set[str]]:
    merged: dict[str, set[str]] = defaultdict(set)
    for links in many:
        for problem, parents in links.items():
            merged[problem] |= parents
    return dict(merged)


def root_problems(problem_id: str, links: dict[str, set[str]]) -> frozenset[str]:
    """The ancestors of `problem_id` that have no parent of their own (the problem itself when it has none, a parent
    not in `links` when it is unknown)."""
    seen, stack, roots = {problem_id}, [problem_id], set()
    while stack:
        problem = stack.pop()
        parents = links.get(problem, set())
        if not parents:
            roots.add(problem)
        for parent in parents - seen:
            seen.add(parent)
            stack.append(parent)
    return frozenset(roots or {min(seen)})  # a parent cycle with no way out: one fixed member stands for it


def row_problem(row: dict) -> str:
    """A row's problem: its problem_id (the dialogue id for a row that has none)."""
    return row.get("problem_id") or row["dialogue_id"]


def split_by_root(problems: list[str], links: dict[str, set[str]], test_fraction: float,
                  min_test_problems: int) -> dict[str, str]:
    """problem -> train | test. Roots are split by their hash (split_problems); a problem is in test when any of its
    roots is."""
    roots = {p: root_problems(p, links) for p in set(problems)}
    root_split = split_problems([r for rs in roots.values() for r in rs], test_fraction, min_test_problems)
    return {p: "test" if any(root_split[r] == "test" for r in rs) else "train" for p, rs in roots.items()}


def lineage_columns(asset: str, home: Home) -> list[pl.DataFrame]:
    """problem_id and parent_id of every partition of `asset` that has both (older ones may lack parent_id)."""
    frames = []
    for partition in table_partitions(asset, home):
        path = table_path(asset, partition, home)
        if {"problem_id", "parent_id"} <= set(pq.read_schema(path).names):
            frames.append(pl.read_parquet(path, columns=["problem_id", "parent_id"]))
    return frames


def lineage(home: Home) -> dict[str, set[str]]:
    """problem_id -> parents, from the problem tables: the verified problems and the method rows of every
    partition (a parent may come from another source's or another round's partition)."""
    return parent_links(*lineage_columns(OSS_INSTRUCT_PROBLEMS, home), *lineage_columns(METHOD_DIALOGUES, home))


def root_leaks(table: pl.DataFrame, links: dict[str, set[str]]) -> list[str]:
    """Roots with rows in both splits, from the table's split column. A test row with several roots (a packed row)
    is left out: it goes to test when any member is a test root, so its other members may be train roots."""
    links = merge_links(links, parent_links(table))
    splits_of: dict[str, set[str]] = defaultdict(set)
    for problem, split in table.select(pl.coalesce("problem_id", "id"), "split").unique().iter_rows():
        roots = root_problems(problem, links)
        if split == "train" or len(roots) == 1:
            for root in roots:
                splits_of[root].add(split)
    return sorted(r for r, s in splits_of.items() if len(s) > 1)
