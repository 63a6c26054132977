"""The method dimension of sft_dataset: the seeded mix per method and source, the split by root problem (derived and
packed rows follow the problems they came from), and the per-method figures in the card and the asset metadata."""

import itertools

import dagster as dg
import polars as pl
import pytest
from datasets import load_dataset
from huggingface_hub import DatasetCard

from assets.release.publish import hub_dataset
from assets.release.sft_dataset import SftConfig, build_sft, release_dir, sft_dataset
from assets.release.sft_mix import apply_mix, parse_mix, with_method
from assets.release.sft_split import lineage, problem_hash, root_leaks
from assets.schemas import DIALOGUE_REJECTS, DIALOGUES, PROBLEMS, frame
from resources.home import Home
from resources.hub import HubPublisher
from resources.store import ParquetIOManager, read_table, table_path, write_table
from tests.conftest import shared_embedder
from tests.dialogue_rows import dialogue_row

HASH_ONLY = SftConfig(min_test_problems=0)  # splits by the hash alone, so a test knows where each root goes


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("CRUCIBLE_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def problem_ids(split: str, n: int, prefix: str) -> list[str]:
    """n problem ids the default 10% hash split sends to `split`."""
    wanted = (lambda p: problem_hash(p) < 0.1) if split == "test" else (lambda p: problem_hash(p) >= 0.1)
    return list(itertools.islice((p for k in itertools.count() if wanted(p := f"{prefix}{k}")), n))


def row(problem_id: str, i: int = 0, method: str | None = None, parent_id: str | None = None,
        source: str = "stdlib", **extra) -> dict:
    return {**dialogue_row(i, source), "dialogue_id": f"d-{method}-{problem_id}", "problem_id": problem_id,
            "method": method, "parent_id": parent_id, **extra}


def splits_of(table: pl.DataFrame) -> dict[str, str]:
    return dict(zip(table["problem_id"], table["split"]))


# --- the mix ------------------------------------------------------------------------------------------------------

def mixed_rows() -> pl.DataFrame:
    """20 function_instruct rows (half from before methods existed: method null), 10 evol_instruct, 6 from mylib."""
    rows = [row(f"f{i}", i, method=None if i % 2 else "function_instruct") for i in range(20)]
    rows += [row(f"e{i}", i, method="evol_instruct", parent_id=f"f{i}") for i in range(10)]
    rows += [row(f"m{i}", i, method="function_instruct", source="mylib") for i in range(6)]
    return frame(rows, DIALOGUES)


def kept_ids(df: pl.DataFrame, method: str) -> set[str]:
    return set(df.filter(pl.col("method") == method)["dialogue_id"])


def test_a_share_and_a_cap_keep_exact_counts_chosen_by_the_seeded_hash():
    dialogues = with_method(mixed_rows())
    mix = {"method:evol_instruct": 0.5, "method:function_instruct": 7, "source:mylib": 2}
    kept, report = apply_mix(dialogues, mix, seed=0)
    assert len(kept.filter(pl.col("method") == "evol_instruct")) == 5
    # The cap counts the null-method rows as function_instruct: 26 rows in the group, 7 kept.
    assert len(kept.filter(pl.col("method") == "function_instruct")) == 7
    # Source entries apply after method entries, to the rows still in.
    mylib_left = len(kept.filter(pl.col("source") == "mylib"))
    assert report == [
        {"group": "method:evol_instruct", "requested": 0.5, "rows": 10, "kept": 5, "dropped": 5},
        {"group": "method:function_instruct", "requested": 7.0, "rows": 26, "kept": 7, "dropped": 19},
        {"group": "source:mylib", "requested": 2.0, "rows": report[2]["rows"], "kept": mylib_left,
         "dropped": report[2]["rows"] - mylib_left},
    ]
    assert mylib_left == min(2, report[2]["rows"])

    again, _ = apply_mix(dialogues, mix, seed=0)
    other, _ = apply_mix(dialogues, mix, seed=1)
    assert again["dialogue_id"].to_list() == kept["dialogue_id"].to_list()
    assert kept_ids(other, "evol_instruct") != kept_ids(kept, "evol_instruct")
    assert kept_ids(other, "function_instruct") != kept_ids(kept, "function_instruct")

    # Rows added later never reshuffle the others: of the old rows, a cap keeps a subset of what it kept before.
    grown = with_method(pl.concat([mixed_rows(), frame([row(f"n{i}", i) for i in range(10)], DIALOGUES)]))
    after, _ = apply_mix(grown, {"method:function_instruct": 7}, seed=0)
    before, _ = apply_mix(dialogues, {"method:function_instruct": 7}, seed=0)
    old_kept_after = kept_ids(after, "function_instruct") - {f"d-None-n{i}" for i in range(10)}
    assert old_kept_after <= kept_ids(before, "function_instruct")


def test_empty_mix_takes_everything_and_share_zero_drops_a_group():
    dialogues = with_method(mixed_rows())
    assert apply_mix(dialogues, {}, seed=0)[0].equals(dialogues)
    kept, report = apply_mix(dialogues, {"method:evol_instruct": 0, "method:function_instruct": 1.0}, seed=3)
    assert set(kept["method"]) == {"function_instruct"} and len(kept) == 26
    assert [g["dropped"] for g in report] == [10, 0]


@pytest.mark.parametrize(("key", "value", "says"), [
    ("model:evol_instruct", 0.5, "is not valid: write {'method:<name>' or 'source:<name>'"),
    ("evol_instruct", 0.5, "is not valid"),
    ("source:", 3, "is not valid"),
    ("method:evolve", 0.5, "names no generation method: use method:<one of function_instruct"),
    ("method:import:", 0.5, "names no generation method"),
    ("method:evol_instruct", -0.5, "neither a share nor a row cap"),
    ("source:stdlib", 2.5, "neither a share nor a row cap"),
    ("source:stdlib", float("nan"), "neither a share nor a row cap"),
])
def test_a_bad_mix_entry_is_a_one_line_error_naming_the_key(key, value, says):
    with pytest.raises(ValueError) as err:
        parse_mix({"method:oss_instruct": 0.2, key: value})
    message = str(err.value)
    assert says in message and repr(key) in message and "\n" not in message


def test_import_methods_and_any_source_are_accepted():
    entries = parse_mix({"source:mylib": 3, "method:import:code_feedback": 0.25, "method:follow_up": 1})
    assert [e.key for e in entries] == ["method:follow_up", "method:import:code_feedback", "source:mylib"]
    assert [e.keep(10) for e in entries] == [10, 3, 3]  # a share rounds half up
    assert parse_mix({"method:follow_up": 0.35})[0].keep(10) == 4 and parse_mix({"source:a": 5})[0].keep(2) == 2


# --- the split by root problem ------------------------------------------------------------------------------------

def test_a_derived_row_of_a_test_problem_lands_in_test_however_far_down():
    test_root, = problem_ids("test", 1, "root")
    train_root, = problem_ids("train", 1, "root")
    evolved, followed, own = problem_ids("train", 3, "derived")  # their own hashes say train
    orphan_parent, = problem_ids("test", 1, "gone")  # a parent that is not in the release
    rows = [row(test_root), row(train_root, 1),
            row(evolved, 2, method="evol_instruct", parent_id=test_root),
            row(followed, 3, method="follow_up", parent_id=evolved),
            row(own, 4, method="evol_instruct", parent_id=train_root),
            row("orphan-child", 5, method="code_correction", parent_id=orphan_parent)]
    splits = splits_of(build_sft(frame(rows, DIALOGUES), HASH_ONLY))
    assert splits == {test_root: "test", evolved: "test", followed: "test", "orphan-child": "test",
                      train_root: "train", own: "train"}


def test_a_packed_row_goes_to_test_when_any_member_root_is_a_test_root():
    test_root, = problem_ids("test", 1, "root")
    train_a, train_b = problem_ids("train", 2, "root")
    evolved, = problem_ids("train", 1, "evolved")
    packed_ids = problem_ids("test", 2, "packed")  # their own hashes say test: they must not matter
    rows = [row(test_root), row(train_a, 1), row(train_b, 2),
            row(evolved, 3, method="evol_instruct", parent_id=test_root),
            # one member is derived from the test root: the packed row follows it into test
            row(packed_ids[0], 4, method="single_turn_packing", parent_id=f"{train_a},{evolved}"),
            row(packed_ids[1], 5, method="single_turn_packing", parent_id=f"{train_a},{train_b}")]
    table = build_sft(frame(rows, DIALOGUES), HASH_ONLY)
    assert splits_of(table) == {test_root: "test", evolved: "test", packed_ids[0]: "test", train_a: "train",
                                train_b: "train", packed_ids[1]: "train"}
    # The packed test row holds a train root beside its test one: that is the rule, not a leak.
    assert root_leaks(table, {}) == []


def test_the_split_follows_parents_through_the_problem_tables(home):
    """A follow-up of an evolved problem that dedup dropped: the chain runs through method_dialogues and
    oss_instruct_problems, which the release does not hold."""
    test_root, = problem_ids("test", 1, "root")
    evolved, followed = problem_ids("train", 2, "derived")
    write_table(frame([{"problem_id": test_root, "parent_id": None}], PROBLEMS),
                table_path("oss_instruct_problems", "stdlib~r2"))
    write_table(frame([row(evolved, method="evol_instruct", parent_id=test_root)], DIALOGUES),
                table_path("method_dialogues", "evol_instruct|stdlib"))
    # A partition written before parent_id existed is read around, not failed on.
    write_table(pl.DataFrame({"problem_id": ["old"]}), table_path("oss_instruct_problems", "old"))
    release = frame([row(followed, method="follow_up", parent_id=evolved), row("other", 1)], DIALOGUES)
    links = lineage(Home.from_env())
    assert links[evolved] == {test_root}
    assert splits_of(build_sft(release, HASH_ONLY, links))[followed] == "test"
    assert splits_of(build_sft(release, HASH_ONLY))[followed] == "train"  # without the tables evolved is the root


def test_min_test_problems_holds_out_a_root_with_everything_derived_from_it():
    roots = problem_ids("train", 3, "root")
    rows = [row(r, i) for i, r in enumerate(roots)]
    rows += [row(f"child-of-{r}", 5 + i, method="similar_problem", parent_id=r) for i, r in enumerate(roots)]
    table = build_sft(frame(rows, DIALOGUES), SftConfig(min_test_problems=1))
    held = min(roots, key=problem_hash)
    assert set(table.filter(pl.col("split") == "test")["problem_id"]) == {held, f"child-of-{held}"}


def test_a_derived_row_in_train_under_a_test_root_is_a_leak():
    test_root, = problem_ids("test", 1, "root")
    table = build_sft(frame([row(test_root), row("child", 1, method="evol_instruct", parent_id=test_root),
                             row("other", 2)], DIALOGUES), HASH_ONLY)
    assert root_leaks(table, {}) == []
    leaked = table.with_columns(pl.when(pl.col("problem_id") == "child").then(pl.lit("train"))
                                .otherwise(pl.col("split")).alias("split"))
    assert root_leaks(leaked, {}) == [test_root]


# --- the card and the metadata ------------------------------------------------------------------------------------

def write(asset: str, partition: str, rows: list[dict], schema=DIALOGUES) -> None:
    write_table(frame(rows, schema), table_path(asset, partition))


def method_tables() -> list[dict]:
    """stdlib: 8 function_instruct rows (4 with method null; difficulty easy x2, medium x1, the rest unlabelled;
    4 pass at the first turn) and 4 evol_instruct rows derived from them (hard x3, one unlabelled; all pass at the
    first turn). Generation: function_instruct 8 kept + 2 rejected, evol_instruct 4 + 4, code_correction 0 + 3;
    another source's method partition is not counted."""
    labels = ["easy", "easy", "medium"] + [None] * 5
    function = [{**dialogue_row(i), "method": None if i < 4 else "function_instruct", "difficulty": labels[i]}
                for i in range(8)]
    evol = [{**dialogue_row(i, fail_first=False), "dialogue_id": f"evol{i}", "problem_id": f"evolved{i}",
             "method": "evol_instruct", "parent_id": function[i]["problem_id"],
             "difficulty": "hard" if i else None} for i in range(4)]
    write("verified_dialogues", "stdlib", function)
    write("dialogue_rejects", "stdlib", [{**function[0], "dialogue_id": f"r{i}", "reason": "max_turns"}
                                         for i in range(2)], DIALOGUE_REJECTS)
    write("method_dialogues", "evol_instruct|stdlib", evol)
    write("method_rejects", "evol_instruct|stdlib", [{**evol[0], "dialogue_id": f"re{i}", "reason": "tests_fail"}
                                                     for i in range(4)], DIALOGUE_REJECTS)
    write("method_rejects", "code_correction|stdlib", [{**evol[0], "dialogue_id": f"rc{i}", "reason": "no_bug"}
                                                       for i in range(3)], DIALOGUE_REJECTS)
    write("method_dialogues", "evol_instruct|other", [{**evol[0], "dialogue_id": f"x{i}"} for i in range(5)])
    write("decontaminated_dialogues", "stdlib", function + evol)
    return function + evol


def materialize(config: SftConfig):
    return dg.materialize([sft_dataset, hub_dataset], instance=dg.DagsterInstance.ephemeral(),
                          resources={"io_manager": ParquetIOManager(), "hub": HubPublisher(),
                                     "embedder": shared_embedder()},
                          run_config={"ops": {"sft_dataset": {"config": config.model_dump()}}})


def release_of(table: pl.DataFrame):
    return release_dir("crucible-code-feedback", table["dataset_version"][0], Home.from_env())


def test_card_and_metadata_show_per_method_rows_pass_rates_and_difficulty(home):
    rows = method_tables()
    result = materialize(SftConfig())
    assert result.success and all(c.passed for c in result.get_asset_check_evaluations())
    table = read_table("sft_dataset")
    assert table["method"].value_counts(sort=True).rows() == [("function_instruct", 8), ("evol_instruct", 4)]
    # Each evolved row shares the split of the problem it came from.
    parent_split = splits_of(table)
    assert all(parent_split[r["parent_id"]] == parent_split[r["problem_id"]] for r in rows if r.get("parent_id"))

    card = DatasetCard.load(release_of(table) / "README.md")
    assert card.data.tags[-2:] == ["function-instruct", "evol-instruct"]
    text = card.text
    assert "| `function_instruct` | 8 | 66.7% | 80.0% (8 / 10) | 1.50 | 50.0% |" in text
    assert "| `evol_instruct` | 4 | 33.3% | 50.0% (4 / 8) | 1.00 | 100.0% |" in text
    assert "| `code_correction` | 0 | 0.0% | 0.0% (0 / 3) | — | — |" in text
    assert "| method | easy | medium | hard | unlabelled |" in text
    assert "| `evol_instruct` | 0 | 0 | 3 | 1 |" in text and "| `function_instruct` | 2 | 1 | 0 | 5 |" in text
    assert "No mix: the release takes every decontaminated row." in text

    meta = result.asset_materializations_for_node("sft_dataset")[0].metadata
    assert meta["method_rows"].value == {
        "function_instruct": {"rows": 8, "kept": 8, "rejected": 2, "pass_rate": 0.8},
        "evol_instruct": {"rows": 4, "kept": 4, "rejected": 4, "pass_rate": 0.5},
        "code_correction": {"rows": 0, "kept": 0, "rejected": 3, "pass_rate": 0.0}}
    assert "| `evol_instruct` | 4 |" in meta["methods"].value


def test_a_mixed_release_records_the_mix_and_loads_with_the_method_column(home, tmp_path):
    method_tables()
    config = SftConfig(mix={"method:evol_instruct": 2, "method:function_instruct": 0.5}, mix_seed=7)
    result = materialize(config)
    assert result.success and all(c.passed for c in result.get_asset_check_evaluations())
    table = read_table("sft_dataset")
    assert dict(table["method"].value_counts().rows()) == {"function_instruct": 4, "evol_instruct": 2}

    meta = result.asset_materializations_for_node("sft_dataset")[0].metadata
    assert meta["mix"].value == {
        "requested": {"method:evol_instruct": 2.0, "method:function_instruct": 0.5}, "seed": 7,
        "groups": [{"group": "method:evol_instruct", "requested": 2.0, "rows": 4, "kept": 2, "dropped": 2},
                   {"group": "method:function_instruct", "requested": 0.5, "rows": 8, "kept": 4, "dropped": 4}]}
    folder = release_of(table)
    text = (folder / "README.md").read_text()
    assert "seeded with 7" in text
    assert "| `method:evol_instruct` | 2 | 4 | 2 | 2 |" in text
    assert "| `method:function_instruct` | 0.5 | 8 | 4 | 4 |" in text
    assert "| `evol_instruct` | 2 | 33.3% | 50.0% (4 / 8) | 1.00 | 100.0% |" in text

    files = {s: str(p) for s in ("train", "test") if (p := folder / "data" / f"{s}-00000-of-00001.parquet").is_file()}
    ds = load_dataset("parquet", data_files=files, cache_dir=str(tmp_path / "hf-cache"))
    assert all("method" in ds[s].column_names and "parent_id" in ds[s].column_names for s in ds)
    loaded = sorted(m for s in ds for m in ds[s]["method"])
    assert loaded == ["evol_instruct"] * 2 + ["function_instruct"] * 4


def test_a_bad_mix_key_fails_the_asset_with_its_one_line_message(home):
    method_tables()
    result = dg.materialize([sft_dataset], instance=dg.DagsterInstance.ephemeral(),
                            resources={"io_manager": ParquetIOManager(), "hub": HubPublisher(),
                                       "embedder": shared_embedder()},
                            run_config={"ops": {"sft_dataset": {"config": SftConfig(
                                mix={"methods:evol_instruct": 0.5}).model_dump()}}},
                            raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    cause = failure.step_failure_data.error.cause
    assert cause.cls_name == "ValueError"
    assert cause.message.startswith("ValueError: sft_dataset mix key 'methods:evol_instruct' is not valid: write")
    assert cause.message.strip().count("\n") == 0
