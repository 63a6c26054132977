"""Dedup: the pure layers (assets/curate/dedup_layers.py) and the deduplicated_dialogues asset over two partitions."""

import dagster as dg
import numpy as np
import pytest

from assets.curate.dedup import deduplicated_dialogues
from assets.curate.dedup_layers import DedupSettings, find_duplicates, normalize, shingles
from assets.keys import DEDUP_REJECTS_TABLE, DEDUPLICATED_DIALOGUES, VERIFIED_DIALOGUES
from assets.partitions import seed_source_partitions
from assets.schemas import DEDUP_REJECTS, DIALOGUES, frame
from resources.embedder import Embedder, TextEmbedder
from resources.store import ParquetIOManager, read_table, table_path, write_table

LONG = ("Write a function that reads a CSV file of sales records, groups the rows by region, and returns a dictionary "
        "mapping each region to the total revenue, ignoring rows whose amount column is empty or not a number.")


@pytest.fixture(scope="module")
def embedder(tmp_path_factory):
    return TextEmbedder(cache_path=tmp_path_factory.getbasetemp() / "embedding-cache.sqlite")


@pytest.mark.parametrize("text, expected", [
    ("  Hello\tWORLD \n", "hello world"),
    ("ﬁle Ｓum", "file sum"),  # NFKC: ligature and full-width letters
    (None, ""),
])
def test_normalize(text, expected):
    assert normalize(text) == expected


def test_shingles():
    assert shingles("a b c", 5) == {b"a b c"}
    assert len(shingles("one two three four five six", 5)) == 2
    assert shingles("", 5) == set()


def fake_embed(texts):
    """Deterministic vectors: texts starting with the same word are identical, others orthogonal-ish."""
    out = []
    for t in texts:
        rng = np.random.default_rng(abs(hash(t.split()[0])) % 2**32)
        v = rng.normal(size=16)
        out.append(v / np.linalg.norm(v))
    return np.array(out, dtype=np.float32)


def test_each_layer_names_what_it_duplicates():
    new_ids = ["n0", "n1", "n2", "n3", "n4"]
    new_texts = [
        LONG,
        "  write a FUNCTION that reads a csv file of sales records, groups the rows by region, and returns a "
        "dictionary mapping each region to the total revenue, ignoring rows whose amount column is empty or not a "
        "number.",  # exact after normalisation
        LONG.replace("total revenue", "summed revenue"),  # a one-word edit: MinHash
        "Zebra stripes are counted by this program.",  # embedding (fake: same first word as the earlier row)
        "Something else entirely.",
    ]
    dups = find_duplicates(new_ids, new_texts, ["e0"], ["Zebra crossings are safe places"], fake_embed,
                           DedupSettings())
    got = {(d.index, d.duplicate_of, d.reason) for d in dups}
    assert got == {(1, "n0", "exact"), (2, "n0", "minhash"), (3, "e0", "embedding")}
    minhash = next(d for d in dups if d.reason == "minhash")
    assert 0.7 <= minhash.score < 1.0


def test_earlier_rows_win_and_layers_can_be_switched_off():
    dups = find_duplicates(["n0"], [LONG], ["old"], [LONG.upper()], settings=DedupSettings(layers=("exact",)))
    assert [(d.duplicate_of, d.reason) for d in dups] == [("old", "exact")]
    assert find_duplicates(["a", "b"], ["x y", "z w"], settings=DedupSettings(layers=("exact", "minhash"))) == []
    with pytest.raises(ValueError, match="needs an `embed` function"):
        find_duplicates(["a"], ["x"])
    with pytest.raises(ValueError, match="unknown dedup layers"):
        DedupSettings(layers=("fuzzy",))


def test_real_embeddings_keep_related_but_different_problems(embedder):
    texts = ["Return the sum of the even numbers in a list.", "Return the sum of the odd numbers in a list.",
             "Add up the even values of a list and return the total."]
    dups = find_duplicates(["a", "b", "c"], texts, embed=embedder.encode,
                           settings=DedupSettings(layers=("embedding",)))
    assert [d.index for d in dups] == []  # even vs odd is another problem; the rewording is below 0.95 as well
    same = find_duplicates(["a", "b"], [texts[0], texts[0] + " "], embed=embedder.encode,
                           settings=DedupSettings(layers=("embedding",)))
    assert [(d.index, d.duplicate_of) for d in same] == [(1, "a")]


def dialogue(i, instruction):
    return {"dialogue_id": f"d{i}", "problem_id": f"p{i}", "seed_id": f"s{i}", "source": "stdlib",
            "instruction": instruction, "solution": "def f():\n    return 1\n", "tests": "assert f() == 1",
            "messages": [{"role": "user", "content": instruction}], "turns": 1, "passed_turn": 1, "verdicts": []}


def materialize(partition, instance, tmp_path):
    upstream = dg.AssetSpec(VERIFIED_DIALOGUES, partitions_def=seed_source_partitions)
    return dg.materialize([upstream, deduplicated_dialogues], partition_key=partition, instance=instance,
                          selection=[DEDUPLICATED_DIALOGUES, DEDUP_REJECTS_TABLE],
                          resources={"io_manager": ParquetIOManager(),
                                     "embedder": Embedder(cache_path=str(tmp_path.parent / "embedding-cache.sqlite"))})


def test_asset_over_two_partitions(tmp_path, monkeypatch):
    monkeypatch.setenv("CRUCIBLE_HOME", str(tmp_path))
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("seed_source", ["stdlib", "later"])
    write_table(frame([dialogue(0, LONG), dialogue(1, LONG.lower()), dialogue(2, LONG.replace("total", "summed")),
                       dialogue(3, "Implement binary search over a sorted list of integers.")], DIALOGUES),
                table_path(VERIFIED_DIALOGUES, "stdlib"))
    result = materialize("stdlib", instance, tmp_path)
    assert result.success
    kept = read_table(DEDUPLICATED_DIALOGUES, ["stdlib"])
    rejects = read_table(DEDUP_REJECTS_TABLE, ["stdlib"])
    assert kept["dialogue_id"].to_list() == ["d0", "d3"]
    assert dict(zip(rejects["dialogue_id"], zip(rejects["reason"], rejects["duplicate_of"]))) == {
        "d1": ("exact", "d0"), "d2": ("minhash", "d0")}
    assert list(kept.schema.items()) == list(DIALOGUES.items())
    assert list(rejects.schema.items()) == list(DEDUP_REJECTS.items())
    metadata = result.asset_materializations_for_node("deduplicated_dialogues")[0].metadata
    assert metadata["dropped_exact"].value == 1 and metadata["dropped_minhash"].value == 1

    # A later partition: its copy of an earlier kept problem is rejected, naming the earlier row.
    write_table(frame([dialogue(10, "implement binary search over a sorted list of integers."),
                       dialogue(11, "Merge overlapping intervals given as (start, end) pairs.")], DIALOGUES),
                table_path(VERIFIED_DIALOGUES, "later"))
    assert materialize("later", instance, tmp_path).success
    assert read_table(DEDUPLICATED_DIALOGUES, ["later"])["dialogue_id"].to_list() == ["d11"]
    later_rejects = read_table(DEDUP_REJECTS_TABLE, ["later"])
    assert later_rejects.select("dialogue_id", "reason", "duplicate_of").rows() == [("d10", "exact", "d3")]
