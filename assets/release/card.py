"""The dataset card: README.md with the YAML front matter the Hub reads (license, task categories, configs and splits)
and what a user needs to trust the data: statistics, the curation funnel, the contamination report, the generation
settings behind every config fingerprint, and plots.

    stats = card_stats(sft_table, report, attempted)   # numbers only, no I/O
    text = render_card(stats, name, plots={"pass_rate": "plots/pass_rate_by_turn.png", ...})
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

import polars as pl
import yaml

# Licence ids the Hub's metadata validator knows, lowercase SPDX. Seed licences outside this set are listed under
# `other` with their SPDX names in `license_name`.
HUB_LICENSES = {
    "apache-2.0", "mit", "bsd-2-clause", "bsd-3-clause", "bsd-3-clause-clear", "cc0-1.0", "cc-by-4.0",
    "cc-by-sa-4.0", "gpl-2.0", "gpl-3.0", "lgpl-2.1", "lgpl-3.0", "agpl-3.0", "mpl-2.0", "unlicense", "bsl-1.0",
    "artistic-2.0", "wtfpl", "afl-3.0", "ecl-2.0", "epl-2.0", "isc", "postgresql", "zlib", "ms-pl", "ncsa",
}
SIZE_CATEGORIES = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
                   (10_000_000, "1M<n<10M")]

FIELDS = {
    "id": "dialogue id (content hash)",
    "split": "train or test: by a hash of problem_id, so every dialogue of a problem lands in the same split",
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
    extra: dict = field(default_factory=dict)


def _counts(series: pl.Series) -> dict:
    return dict(sorted(Counter(series.to_list()).items(), key=lambda kv: (-kv[1], str(kv[0]))))


def pass_rates(passed_turns: list[int | None], attempted: int, max_turn: int) -> list[float]:
    """Cumulative share of attempted dialogues verified by each turn."""
    if not attempted:
        return []
    return [sum(1 for t in passed_turns if t is not None and t <= k) / attempted for k in range(1, max_turn + 1)]


def card_stats(table: pl.DataFrame, contamination: pl.DataFrame, attempted: pl.DataFrame, funnel: dict[str, int],
               configs: dict[str, dict | None]) -> CardStats:
    """`table`: the SFT rows; `contamination`: the report rows of the same partitions; `attempted`: every dialogue
    generation tried (verified and rejected) with `turns` and `passed_turn`."""
    splits = ["train", "test"]
    by_split = {s: table.filter(pl.col("split") == s) for s in splits}
    max_turn = int(attempted["turns"].max() or 0) if len(attempted) else int(table["turns"].max() or 0)
    return CardStats(
        rows={s: len(df) for s, df in by_split.items()},
        problems={s: df["problem_id"].n_unique() for s, df in by_split.items()},
        turns=dict(sorted(Counter(table["turns"].to_list()).items())),
        passed_turn=dict(sorted(Counter(table["passed_turn"].to_list()).items())),
        pass_rate_by_turn=pass_rates(attempted["passed_turn"].to_list() if len(attempted) else [], len(attempted),
                                     max_turn),
        attempted=len(attempted),
        sources=_counts(table["source"]),
        licenses=_counts(table["license"].fill_null("unknown")),
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
    )


def hub_license(licenses: list[str]) -> dict:
    """Front-matter licence fields for the seed licences."""
    ids = sorted({(lic or "unknown").lower() for lic in licenses}) or ["unknown"]
    known = [i for i in ids if i in HUB_LICENSES]
    unknown = [i for i in ids if i not in HUB_LICENSES]
    if not unknown:
        return {"license": known[0] if len(known) == 1 else known}
    return {"license": "other", "license_name": ", ".join(ids)}


def size_category(n: int) -> str:
    return next((label for bound, label in SIZE_CATEGORIES if n < bound), "n>10M")


def present_splits(rows: dict[str, int]) -> list[str]:
    return [split for split in ("train", "test") if rows.get(split)]


def front_matter(stats: CardStats, pretty_name: str) -> dict:
    total = sum(stats.rows.values())
    return {
        **hub_license(list(stats.licenses)),
        "pretty_name": pretty_name,
        "language": ["en"],
        "task_categories": ["text-generation"],
        "tags": ["code", "synthetic", "execution-verified", "multi-turn", "python"],
        "size_categories": [size_category(total)],
        # Only splits with rows: an empty Parquet file is not a loadable split (Arrow refuses a 0-row batch).
        "configs": [{"config_name": "default", "data_files": [
            {"split": split, "path": f"data/{split}-*.parquet"} for split in present_splits(stats.rows)]}],
    }


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in row) + " |" for row in rows]
    return "\n".join(lines)


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
        f"{total} multi-turn Python coding dialogues, every one verified by running its final answer against unit "
        "tests in a sandbox. Problems were written by a teacher model from real open-source snippets (OSS-Instruct); "
        "a programmer role answered, failing answers got the execution result and feedback back until the tests "
        "passed (AIEV-Instruct, Code-Feedback). Duplicates and anything matching HumanEval or MBPP (n-gram, "
        "embedding and execution checks) were removed.\n",
        f"Release `{stats.version}`.\n",
        "## Use\n",
        f"```python\nfrom datasets import load_dataset\n\nds = {load}\n```\n",
        "`messages` is in the chat format TRL's `SFTTrainer` reads directly.\n",
        "## Splits\n",
        _table(["split", "rows", "problems"], [[s, stats.rows[s], stats.problems[s]] for s in stats.rows]),
        "\nThe test split is held out by problem (a hash of the problem id), for comparing a student with its "
        "teacher" + ("" if stats.rows.get("test") else "; this release is too small to have one") + ".\n",
        "## Statistics\n",
        "### Turns per dialogue\n",
        _table(["assistant turns", "rows"], [[k, v] for k, v in stats.turns.items()]),
        "",
        _table(["passed at turn", "rows"], [[k, v] for k, v in stats.passed_turn.items()]),
        f"\n![turns per dialogue]({plots['turns']})\n" if "turns" in plots else "",
        f"### Pass rate by turn ({stats.attempted} dialogues attempted)\n",
        _table(["turn", "verified by then"], rates) if rates else "(no attempts recorded)",
        f"\n![pass rate by turn]({plots['pass_rate']})\n" if "pass_rate" in plots else "",
        "### Seed sources and licences\n",
        _table(["source", "rows"], [[k, v] for k, v in stats.sources.items()]),
        "",
        _table(["licence", "rows"], [[k, v] for k, v in stats.licenses.items()]),
        "\n### Models, feedback and tests\n",
        _table(["teacher / programmer", "rows"], [[k, v] for k, v in stats.models.items()]),
        "",
        _table(["feedback mode", "rows"], [[k, v] for k, v in stats.feedback_modes.items()]),
        "",
        _table(["tests source", "rows"], [[k, v] for k, v in stats.tests_sources.items()]),
        f"\nTeacher tokens spent on these dialogues: {stats.tokens['prompt']:,} prompt, "
        f"{stats.tokens['completion']:,} completion.\n",
        "## Curation\n",
        _table(["stage", "rows"], [[k, v] for k, v in stats.funnel.items()]),
        "\n## Decontamination\n",
        _contamination_section(stats.contamination),
        "## Generation settings\n",
        "Each row's `config_fingerprint` names the settings it was generated with:\n",
        *[_config_section(fp, stats.configs.get(fp)) for fp in stats.fingerprints],
        "## Fields\n",
        _table(["field", "meaning"], [[f"`{k}`", v] for k, v in FIELDS.items()]),
        "",
    ]
    return "\n".join(parts)
