"""The dataset card: README.md with the YAML front matter the Hub reads (license, task categories, configs and splits)
and what a user needs to trust the data: statistics (per generation method too), Magicoder's statistics per source and
method (problem categories, token lengths, similarity to HumanEval before and after decontamination: computed in
assets/release/dataset_stats.py), the mix, the curation funnel, the contamination report, the generation settings
behind every config fingerprint, and plots; and LICENSES.md, the seed licences with their rows and sources.

    stats = card_stats(sft_table, report, attempted, funnel, configs, generation, mix, magicoder)   # no I/O
    text = render_card(stats, name, plots={"pass_rate": "plots/pass_rate_by_turn.png", ...})
    (folder / LICENSES_FILE).write_text(licenses_markdown(stats))

The card's licence (`hub_license`) follows the rows' seed licences (lowercased SPDX ids): one Hub licence id when every
row shares it; a list of Hub ids when there are several and the Hub knows each; otherwise `license: other` with
`license_name` an id (the one licence's SPDX id as a slug, or `mixed-seed-licenses`) and `license_link: LICENSES.md`.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field

import polars as pl
import yaml

from assets.release.dataset_stats import (
    ALL,
    CATEGORIES,
    CATEGORY_FLOOR,
    OTHER_CATEGORY,
    DatasetStats,
    similarity_bin_labels,
    token_bin_labels,
)
from assets.schemas import IMPORT_METHOD_PREFIX, unverified_imports
from resources.hub_validate import HUB_LICENSES, OTHER

LICENSES_FILE = "LICENSES.md"
MIXED_LICENSE_NAME = "mixed-seed-licenses"
DIFFICULTIES = ("easy", "medium", "hard")
SIZE_CATEGORIES = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
                   (10_000_000, "1M<n<10M")]

FIELDS = {
    "id": "dialogue id (content hash)",
    "split": "train or test: by a hash of the root problem (the problem a row was derived from, following "
             "`parent_id`), so every dialogue of a problem and of the problems derived from it lands in the same "
             "split; a packed row is in test when any member's root is",
    "messages": "the chat: user instruction, assistant answers, execution results (`Execution result:` user turns "
                "or `tool` turns) and feedback; the last assistant turn passes the tests",
    "problem_id": "the generated problem",
    "instruction": "the problem statement",
    "solution": "the final, verified code",
    "tests": "assert-based tests the solution passes in the sandbox",
    "tests_source": "questioner (tests as written) or reference_outputs (expected values from the reference "
                    "solution, confirmed by an independent answer)",
    "turns": "assistant answers in the dialogue",
    "passed_turn": "the answer that passed (1 = first try)",
    "feedback_mode": "execution (hints from the error) or human_sim (simulated user feedback)",
    "method": "how the row was made: a generation method (function_instruct, oss_instruct, evol_instruct, ...) or "
              "import:<preset>",
    "parent_id": "the problem a derived row was made from (a packed row: its members' problem ids joined with "
                 "\",\"); empty for a row made from a seed",
    "difficulty": "easy, medium or hard by the share of sampled programmer answers that pass; empty when not "
                  "measured",
    "seed_id, source, path, license": "the open-source snippet the problem was derived from",
    "teacher_model, programmer_model": "models of the questioner and programmer roles",
    "prompt_version": "prompt files used (name.vN@sha)",
    "config_fingerprint": "the generation settings (listed below)",
    "prompt_tokens, completion_tokens": "teacher tokens spent on the dialogue",
    "dataset_version": "fingerprint of this release: rows and split settings",
}


@dataclass
class CardStats:
    """Everything the card reports, computed from tables (no I/O)."""

    rows: dict[str, int]  # split -> rows
    problems: dict[str, int]  # split -> distinct problems
    turns: dict[int, int]  # assistant turns -> rows
    passed_turn: dict[int, int]  # turn that passed -> rows
    pass_rate_by_turn: list[float]  # over every attempted dialogue, cumulative
    attempted: int  # dialogues attempted (verified + rejected)
    sources: dict[str, int]
    licenses: dict[str, int]
    models: dict[str, int]  # "teacher / programmer" -> rows
    feedback_modes: dict[str, int]
    tests_sources: dict[str, int]
    tokens: dict[str, int]  # prompt, completion
    fingerprints: list[str]
    configs: dict[str, dict | None]  # fingerprint -> settings
    funnel: dict[str, int]  # stage -> rows
    contamination: list[dict]  # report rows
    version: str
    methods: list[dict] = field(default_factory=list)  # per method: rows, share, generation pass rate, turns
    difficulty: dict[str, dict[str, int]] = field(default_factory=dict)  # method -> easy/medium/hard/unlabelled
    mix: dict = field(default_factory=dict)  # {"seed": n, "groups": [{group, requested, rows, kept, dropped}]}
    license_sources: dict[str, dict[str, int]] = field(default_factory=dict)  # licence -> source -> rows
    extra: dict = field(default_factory=dict)
    magicoder: DatasetStats | None = None  # Magicoder's statistics per source and method (dataset_stats.py)
    imported: int = 0  # rows imported from published datasets (method import:<preset>)
    unverified: int = 0  # of those, rows taken as published, without tests
    languages: dict[str, int] = field(default_factory=dict)


def _counts(series: pl.Series) -> dict:
    return dict(sorted(Counter(series.to_list()).items(), key=lambda kv: (-kv[1], str(kv[0]))))


def pass_rates(passed_turns: list[int | None], attempted: int, max_turn: int) -> list[float]:
    """Cumulative share of attempted dialogues verified by each turn."""
    if not attempted:
        return []
    return [sum(1 for t in passed_turns if t is not None and t <= k) / attempted for k in range(1, max_turn + 1)]


def method_stats(table: pl.DataFrame, generation: dict[str, dict[str, int]]) -> list[dict]:
    """One entry per method with rows in `table` or counts in `generation` (method -> rows kept and rejected at
    generation), most rows first: rows, share of the release, generation pass rate (None when nothing was counted),
    mean turns and the share passing at the first turn (None without rows)."""
    per = {m: table.filter(pl.col("method") == m) for m in table["method"].unique().to_list()} if len(table) else {}
    out = []
    for method in set(per) | set(generation):
        rows = per.get(method, table.clear())
        made = generation.get(method, {})
        attempts = made.get("kept", 0) + made.get("rejected", 0)
        out.append({
            "method": method, "rows": len(rows), "share": len(rows) / len(table) if len(table) else 0.0,
            "kept": made.get("kept", 0), "rejected": made.get("rejected", 0),
            "pass_rate": made.get("kept", 0) / attempts if attempts else None,
            "mean_turns": float(rows["turns"].mean()) if len(rows) else None,
            "first_turn_pass": float((rows["passed_turn"] == 1).sum()) / len(rows) if len(rows) else None,
        })
    return sorted(out, key=lambda m: (-m["rows"], m["method"]))


def difficulty_stats(table: pl.DataFrame) -> dict[str, dict[str, int]]:
    """method -> rows per difficulty label, anything else (null included) counted as unlabelled."""
    out = {}
    for method in sorted(table["method"].unique().to_list()) if len(table) else []:
        labels = Counter(table.filter(pl.col("method") == method)["difficulty"].to_list())
        known = {d: labels.get(d, 0) for d in DIFFICULTIES}
        out[method] = {**known, "unlabelled": sum(labels.values()) - sum(known.values())}
    return out


def card_stats(table: pl.DataFrame, contamination: pl.DataFrame, attempted: pl.DataFrame, funnel: dict[str, int],
               configs: dict[str, dict | None], generation: dict[str, dict[str, int]] | None = None,
               mix: dict | None = None, magicoder: DatasetStats | None = None) -> CardStats:
    """`table`: the SFT rows; `contamination`: the report rows of the same partitions; `attempted`: every dialogue
    generation tried (verified and rejected) with `turns` and `passed_turn`; `generation`: method -> rows kept and
    rejected at generation in the same partitions; `mix`: the seed and the mix's groups (kept and dropped);
    `magicoder`: `dataset_stats`' figures, for the "Statistics (Magicoder's)" section."""
    splits = ["train", "test"]
    by_split = {s: table.filter(pl.col("split") == s) for s in splits}
    max_turn = int(attempted["turns"].max() or 0) if len(attempted) else int(table["turns"].max() or 0)
    return CardStats(
        rows={s: len(df) for s, df in by_split.items()},
        problems={s: df["problem_id"].n_unique() for s, df in by_split.items()},
        turns=dict(sorted(Counter(table["turns"].to_list()).items())),
        passed_turn=dict(sorted(Counter(table["passed_turn"].drop_nulls().to_list()).items())),
        pass_rate_by_turn=pass_rates(attempted["passed_turn"].to_list() if len(attempted) else [], len(attempted),
                                     max_turn),
        attempted=len(attempted),
        sources=_counts(table["source"]),
        licenses=_counts(table["license"].fill_null("unknown")),
        license_sources=license_sources(table),
        models=_counts(table["teacher_model"].fill_null("?") + " / " + table["programmer_model"].fill_null("?")),
        feedback_modes=_counts(table["feedback_mode"].fill_null("?")),
        tests_sources=_counts(table["tests_source"].fill_null("?")),
        tokens={"prompt": int(table["prompt_tokens"].sum() or 0),
                "completion": int(table["completion_tokens"].sum() or 0)},
        fingerprints=sorted(set(table["config_fingerprint"].drop_nulls().to_list())),
        configs=configs,
        funnel=funnel,
        contamination=contamination.to_dicts() if len(contamination) else [],
        version=table["dataset_version"][0] if len(table) else "empty",
        methods=method_stats(table, generation or {}),
        difficulty=difficulty_stats(table),
        mix=mix or {},
        magicoder=magicoder,
        imported=int(table["method"].fill_null("").str.starts_with(IMPORT_METHOD_PREFIX).sum()) if len(table) else 0,
        unverified=int(unverified_imports(table).sum()),
        languages=_counts(table["language"].fill_null("python")) if "language" in table.columns else {},
    )


def license_sources(table: pl.DataFrame) -> dict[str, dict[str, int]]:
    """Seed licence (as the rows give it, null: unknown) -> seed source -> rows, most rows first."""
    pairs = Counter(zip(table["license"].fill_null("unknown").to_list(), table["source"].to_list())) \
        if len(table) else Counter()
    out: dict[str, dict[str, int]] = {}
    for (lic, source), n in sorted(pairs.items(), key=lambda kv: (-kv[1], str(kv[0]))):
        out.setdefault(lic, {})[source] = n
    return dict(sorted(out.items(), key=lambda kv: (-sum(kv[1].values()), kv[0])))


def hub_license_id(license_name: str | None) -> str:
    """A seed licence as a lowercase id (SPDX `-only` suffixes dropped: GPL-3.0-only is the Hub's gpl-3.0)."""
    lid = (license_name or "unknown").strip().lower()
    return lid.removesuffix("-only") if lid.removesuffix("-only") in HUB_LICENSES else lid


def license_slug(license_name: str) -> str:
    """An id the Hub takes as `license_name`: lowercase words of letters and digits joined by '-' or '.'."""
    slug = re.sub(r"[^a-z0-9.]+", "-", license_name.lower())
    slug = re.sub(r"[.-]*([.-])[.-]*", r"\1", slug).strip(".-")
    return slug or "seed-license"


def hub_license(licenses: list[str]) -> dict:
    """Front-matter licence fields for the seed licences (see the module docstring)."""
    ids = sorted({hub_license_id(lic) for lic in licenses}) or ["unknown"]
    if all(i in HUB_LICENSES for i in ids):
        return {"license": ids[0] if len(ids) == 1 else ids}
    return {"license": OTHER, "license_name": license_slug(ids[0]) if len(ids) == 1 else MIXED_LICENSE_NAME,
            "license_link": LICENSES_FILE}


def licenses_markdown(stats: CardStats) -> str:
    """LICENSES.md: every seed licence with its rows and the sources they come from, and what the card says."""
    meta = hub_license(list(stats.licenses))
    said = ", ".join(f"`{k}: {v}`" for k, v in meta.items())
    rows = [[f"`{lic}`", "yes" if hub_license_id(lic) in HUB_LICENSES else "no (`other`)", sum(sources.values()),
             ", ".join(f"{s} ({n})" for s, n in sources.items())] for lic, sources in stats.license_sources.items()]
    return "\n".join([
        "# Seed licences\n",
        "Every row was generated from an open-source snippet (its `seed_id`, `source`, `path`); the row's `license` "
        "column is the licence of the file the snippet came from, as an SPDX id where known. Use of a row is subject "
        "to that licence.\n",
        _table(["licence", "a Hub licence id", "rows", "seed sources (rows)"], rows) if rows else "(no rows)",
        f"\nThe card's front matter says {said}.\n",
    ])


def size_category(n: int) -> str:
    return next((label for bound, label in SIZE_CATEGORIES if n < bound), "n>10M")


def present_splits(rows: dict[str, int]) -> list[str]:
    return [split for split in ("train", "test") if rows.get(split)]


def method_tags(methods: list[dict]) -> list[str]:
    """Hub tags for the generation methods with rows (evol_instruct -> evol-instruct); imports get none."""
    return [m["method"].replace("_", "-") for m in methods if m["rows"] and ":" not in m["method"]]


def front_matter(stats: CardStats, pretty_name: str) -> dict:
    total = sum(stats.rows.values())
    return {
        **hub_license(list(stats.licenses)),
        "pretty_name": pretty_name,
        "language": ["en"],
        "task_categories": ["text-generation"],
        "tags": ["code", "synthetic", "execution-verified", "multi-turn", "python", *method_tags(stats.methods)],
        "size_categories": [size_category(total)],
        # Only splits with rows: an empty Parquet file is not a loadable split (Arrow refuses a 0-row batch).
        "configs": [{"config_name": "default", "data_files": [
            {"split": split, "path": f"data/{split}-*.parquet"} for split in present_splits(stats.rows)]}],
    }


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def method_table(methods: list[dict]) -> str:
    """The per-method table (markdown): the card's and the asset metadata's."""
    return _table(["method", "rows", "share of release", "generation pass rate", "mean turns",
                   "passed at first turn"],
                  [[f"`{m['method']}`", m["rows"], _percent(m["share"]),
                    "—" if m["pass_rate"] is None else f"{_percent(m['pass_rate'])} ({m['kept']} / "
                                                       f"{m['kept'] + m['rejected']})",
                    "—" if m["mean_turns"] is None else f"{m['mean_turns']:.2f}", _percent(m["first_turn_pass"])]
                   for m in methods])


def _methods_section(stats: CardStats) -> str:
    if not stats.methods:
        return "(no rows)\n"
    return "\n".join([
        "Generation pass rate: rows kept / rows attempted when the method generated in this release's seed sources "
        "(before dedup, decontamination and the mix); — for imported rows or methods with no record.\n",
        method_table(stats.methods), "",
        "### Difficulty by method\n",
        "By the share of sampled programmer answers that pass; unlabelled where it was not measured.\n",
        _table(["method", *DIFFICULTIES, "unlabelled"],
               [[f"`{m}`", *counts.values()] for m, counts in stats.difficulty.items()]), ""])


def _methods_line(methods: list[dict]) -> str:
    made = [f"`{m['method']}`" for m in methods if m["rows"]]
    if len(made) < 2:
        return ""
    return f"The rows come from {len(made)} generation methods ({', '.join(made)}; see Methods below).\n"


def _mix_section(mix: dict) -> str:
    groups = mix.get("groups") or []
    if not groups:
        return "### Mix\n\nNo mix: the release takes every decontaminated row.\n"
    return "\n".join([
        f"### Mix\n\nRows were taken per group by a hash of the row id seeded with {mix.get('seed', 0)}; method "
        "groups apply first, then source groups, each to the rows still in. A requested value up to 1 is a share, "
        "above 1 a row cap.\n",
        _table(["group", "requested", "rows", "kept", "dropped"],
               [[f"`{g['group']}`", f"{g['requested']:g}", g["rows"], g["kept"], g["dropped"]] for g in groups]), ""])


def _contamination_section(rows: list[dict], limit: int = 50) -> str:
    if not rows:
        return "No row of the deduplicated dialogues matched a benchmark problem: nothing was removed.\n"
    per = Counter((r["benchmark"], r["layer"]) for r in rows)
    removed = {r["dialogue_id"] for r in rows}
    out = [f"{len(removed)} dialogues were removed because they match a benchmark problem. One line per "
           f"(dialogue, layer that fired):\n",
           _table(["benchmark", "layer", "rows"], [[b, layer, n] for (b, layer), n in sorted(per.items())]), "",
           _table(["dialogue", "benchmark", "task", "layer", "score", "instruction"],
                  [[r["dialogue_id"], r["benchmark"], r["task_id"], r["layer"], f"{r['score']:.3f}",
                    (r.get("instruction") or "")[:80]] for r in rows[:limit]])]
    if len(rows) > limit:
        out.append(f"\n... and {len(rows) - limit} more lines in `reports/contamination_report.parquet`.")
    return "\n".join(out) + "\n"


def _config_section(fp: str, config: dict | None) -> str:
    if config is None:
        return f"### `{fp}`\n\n(settings not recorded: generated before Crucible kept them)\n"
    return f"### `{fp}`\n\n```json\n{json.dumps(config, indent=2, sort_keys=True)}\n```\n"


def _num(value, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _group(name: str) -> str:
    return "all rows" if name == ALL else f"`{name}`"


def _category_table(ms: DatasetStats) -> str:
    def cell(n: int, total: int) -> str:
        return f"{n} ({_percent(n / total)})" if total else "0"

    totals = {g: sum(c.values()) for g, c in ms.categories.items()}
    names = [c for c in (*CATEGORIES, OTHER_CATEGORY)
             if c != OTHER_CATEGORY or any(ms.categories[g][c] for g in ms.categories)]
    return _table(["category", *map(_group, ms.categories)],
                  [[c, *(cell(ms.categories[g][c], totals[g]) for g in ms.categories)] for c in names])


def _token_tables(ms: DatasetStats) -> str:
    entries = [(g, f, s) for g, fields in ms.tokens.items() for f, s in fields.items()]
    summary = _table(["group", "text", "rows", "mean", "median", "p90", "max"],
                     [[_group(g), f, s["count"], _num(s["mean"]), _num(s["median"], 0), _num(s["p90"]), _num(s["max"])]
                      for g, f, s in entries])
    bins = _table(["group", "text", *token_bin_labels()], [[_group(g), f, *s["bins"]] for g, f, s in entries])
    return f"{summary}\n\nRows per token-count bin:\n\n{bins}"


def _similarity_summary_table(view: dict[str, dict]) -> str:
    return _table(["group", "rows before", "rows after", "mean before", "mean after", "p90 before", "p90 after",
                   "max before", "max after"],
                  [[_group(g), v["before"]["rows"], v["after"]["rows"],
                    *(_num(v[w][k], 3) for k in ("mean", "p90", "max") for w in ("before", "after"))]
                   for g, v in view.items()])


def _similarity_bins_table(view: dict[str, dict]) -> str:
    return _table(["similarity", *(f"{_group(g)} before → after" for g in view)],
                  [[label, *(f"{v['before']['bins'][i]} → {v['after']['bins'][i]}" for v in view.values())]
                   for i, label in enumerate(similarity_bin_labels())])


def magicoder_markdown(ms: DatasetStats | None, plots: dict[str, str] | None = None) -> str:
    """The "Statistics (Magicoder's)" tables (and plots, paths relative to the card): the card's section body and
    the asset metadata's `statistics_magicoder`."""
    plots = plots or {}
    if ms is None or not (ms.tokens[ALL]["instruction"]["count"] or ms.humaneval[ALL]["before"]["rows"]):
        return "(no rows)\n"
    described = "\n".join(f"- **{name}**: {text}" for name, text in CATEGORIES.items())
    parts = [
        "The statistics Magicoder reports for its data, for every seed source and generation method (`all rows`: "
        "the whole release).\n",
        "### Problem categories\n",
        "Each row's instruction goes to the category whose description its embedding (the embedder's, cosine) is "
        "nearest to; `other` when no category reaches a similarity of "
        f"{CATEGORY_FLOOR}.\n",
        _category_table(ms), "",
        f"<details><summary>The category descriptions embedded</summary>\n\n{described}\n\n</details>\n",
        "### Instruction and solution length\n",
        f"In tokens of {ms.tokenizer}.\n",
        _token_tables(ms),
        f"\n![instruction and solution tokens]({plots['token_lengths']})\n" if "token_lengths" in plots else "",
        "### Similarity to HumanEval, before and after decontamination\n",
        "Each row's highest cosine similarity between the embedding of its instruction and the "
        f"{ms.humaneval_problems} HumanEval problems (their prompt or their description, whichever is nearer). "
        "Before: the deduplicated dialogues of this release's seed sources; after: the rows of this release "
        "(decontaminated and mixed).\n",
        _similarity_summary_table(ms.humaneval), "",
        _similarity_bins_table(ms.humaneval),
        f"\n![similarity to HumanEval]({plots['humaneval_similarity']})\n" if "humaneval_similarity" in plots
        else "",
    ]
    if ms.humaneval_tfidf:
        parts += ["TF-IDF cosine (Magicoder's measure; vocabulary and IDF fitted on HumanEval and these rows "
                  "together) of the same texts:\n", _similarity_summary_table(ms.humaneval_tfidf), ""]
    if ms.nearest:
        parts += ["The rows of this release nearest to HumanEval (embedding):\n",
                  _table(["row", "HumanEval task", "similarity", "instruction"],
                         [[r["id"], r["task_id"], f"{r['similarity']:.3f}", r["instruction"][:80]]
                          for r in ms.nearest]), ""]
    return "\n".join(parts)


def _summary_line(stats: CardStats, total: int) -> str:
    generated = total - stats.imported
    languages = ", ".join(f"{name} {n}" for name, n in stats.languages.items())
    text = (f"{generated} multi-turn coding dialogues, every one verified by running its final answer against unit "
            "tests in a sandbox. Problems were written by a teacher model from real open-source snippets "
            "(OSS-Instruct); a programmer role answered, failing answers got the execution result and feedback back "
            "until the tests passed (AIEV-Instruct, Code-Feedback)." if generated or not stats.imported else "")
    if stats.imported:
        text += (f" {stats.imported} rows were imported from published instruction datasets: "
                 f"{stats.imported - stats.unverified} of them verified against tests the teacher wrote for their own "
                 f"solution, {stats.unverified} taken as published (not run).")
    return (text + " Duplicates and anything matching HumanEval or MBPP (n-gram, embedding and execution checks) were "
            f"removed. Languages: {languages or 'none'}.\n")


def render_card(stats: CardStats, pretty_name: str, plots: dict[str, str], repo_id: str | None = None) -> str:
    """The README.md text. `plots`: name -> path relative to the card (pass_rate, turns)."""
    meta = yaml.safe_dump(front_matter(stats, pretty_name), sort_keys=False, allow_unicode=True)
    total = sum(stats.rows.values())
    files = ", ".join(f'"{s}": "data/{s}-*.parquet"' for s in present_splits(stats.rows))
    load = f'load_dataset("{repo_id}")' if repo_id else f'load_dataset("parquet", data_files={{{files}}})'
    rates = [[k, f"{100 * r:.1f}%"] for k, r in enumerate(stats.pass_rate_by_turn, start=1)]
    parts = [
        f"---\n{meta}---\n",
        f"# {pretty_name}\n",
        _summary_line(stats, total),
        _methods_line(stats.methods),
        f"Release `{stats.version}`.\n",
        "## Use\n",
        f"```python\nfrom datasets import load_dataset\n\nds = {load}\n```\n",
        "`messages` is in the chat format TRL's `SFTTrainer` reads directly.\n",
        "## Splits\n",
        _table(["split", "rows", "problems"], [[s, stats.rows[s], stats.problems[s]] for s in stats.rows]),
        "\nThe test split is held out by root problem (a hash of the problem id; a derived row — evolved, similar, "
        "corrected, followed up — shares the split of the problem it was derived from, and a packed row is in test "
        "when any of its members is), for comparing a student with its teacher"
        + ("" if stats.rows.get("test") else "; this release is too small to have one") + ".\n",
        "## Methods\n",
        _methods_section(stats),
        "## Statistics\n",
        "### Turns per dialogue\n",
        _table(["assistant turns", "rows"], [[k, v] for k, v in stats.turns.items()]),
        "",
        _table(["passed at turn", "rows"], [[k, v] for k, v in stats.passed_turn.items()]),
        f"\n![turns per dialogue]({plots['turns']})\n" if "turns" in plots else "",
        f"### Pass rate by turn ({stats.attempted} `function_instruct` dialogues attempted)\n",
        _table(["turn", "verified by then"], rates) if rates else "(no attempts recorded)",
        f"\n![pass rate by turn]({plots['pass_rate']})\n" if "pass_rate" in plots else "",
        "### Seed sources and licences\n",
        _table(["source", "rows"], [[k, v] for k, v in stats.sources.items()]),
        "",
        _table(["licence", "rows"], [[k, v] for k, v in stats.licenses.items()]),
        f"\nEach licence with the sources of its rows: [{LICENSES_FILE}]({LICENSES_FILE}).\n",
        "\n### Models, feedback and tests\n",
        _table(["teacher / programmer", "rows"], [[k, v] for k, v in stats.models.items()]),
        "",
        _table(["feedback mode", "rows"], [[k, v] for k, v in stats.feedback_modes.items()]),
        "",
        _table(["tests source", "rows"], [[k, v] for k, v in stats.tests_sources.items()]),
        f"\nTeacher tokens spent on these dialogues: {stats.tokens['prompt']:,} prompt, "
        f"{stats.tokens['completion']:,} completion.\n",
        *(["## Statistics (Magicoder's)\n", magicoder_markdown(stats.magicoder, plots)] if stats.magicoder else []),
        "## Curation\n",
        _table(["stage", "rows"], [[k, v] for k, v in stats.funnel.items()]),
        "",
        _mix_section(stats.mix),
        "## Decontamination\n",
        _contamination_section(stats.contamination),
        "## Generation settings\n",
        "Each row's `config_fingerprint` names the settings it was generated with:\n",
        *[_config_section(fp, stats.configs.get(fp)) for fp in stats.fingerprints],
        "## Fields\n",
        _table(["field", "meaning"], [[f"`{k}`", v] for k, v in FIELDS.items()]),
        "",
    ]
    return "\n".join(parts)
