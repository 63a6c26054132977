"""How far text-only decontamination can get before any judge: the embedding view's ceiling on labelled sets.

Rows without a solution (a paraphrased problem statement and nothing to run) can only be matched by their text. For
each labelled set this prints, over its text-only rows:
- the embedding view alone: the recall reached when a threshold on a row's best cosine to a benchmark item's
  description or prompt (the two views the embedding layer compares, each with its own threshold there; one threshold
  on the larger of the two here) is set so that at most `--max-fpr` of the clean rows score above it;
- retrieval: how often the labelled benchmark task is the nearest item, or among the nearest 5 or 20. This bounds any
  second stage that only looks at the top candidates (an LLM judge, a solver run against those items' tests): with a
  perfect judge over the top k, recall is the top-k figure.

    python benchmarks/decontam_ceiling.py [LABELLED.jsonl ...] [--max-fpr 0.05]

The threshold is chosen on the same rows it is measured on, so the embedding-alone recall is an in-sample upper bound,
not an estimate. Takes a few seconds (the embeddings are cached under $CRUCIBLE_HOME).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assets.curate.decontam_layers import BenchmarkIndex, DecontamSettings  # noqa: E402
from benchmarks.calibrate_decontam import load_labelled  # noqa: E402
from eval.benchmarks import load_benchmarks  # noqa: E402
from resources.embedder import TextEmbedder  # noqa: E402

DEFAULT_SETS = [ROOT / "tests" / "data" / name for name in
                ("decontam_labelled.jsonl", "decontam_heldout.jsonl", "decontam_heldout3.jsonl")]
TOP_K = (1, 5, 20)


def task_number(task_id: str) -> tuple[str, str]:
    """("humaneval" | "mbpp", its number): an item and its "plus" variant count as the same task."""
    family, _, number = task_id.rpartition("/")
    return ("mbpp" if "mbpp" in family.lower() else "humaneval"), number


def ceiling(rows: list[dict], similarities: np.ndarray, task_ids: list[str], max_fpr: float) -> dict:
    """The embedding-alone recall at `max_fpr` and the top-k retrieval rates of the contaminated rows."""
    labels = np.array([bool(r["contaminated"]) for r in rows])
    best = similarities.max(axis=1)
    clean = np.sort(best[~labels])[::-1]
    allowed = int(np.floor(max_fpr * len(clean)))  # clean rows that may score above the threshold
    threshold = float(clean[allowed]) if allowed < len(clean) else -1.0
    numbers = [task_number(t) for t in task_ids]
    ranks = []
    for row, sims in zip(rows, similarities):
        if row["contaminated"]:
            want = task_number(row["task_id"])
            order = np.argsort(-sims)
            ranks.append(next((rank for rank, i in enumerate(order, 1) if numbers[i] == want), len(order) + 1))
    ranks = np.array(ranks)
    return {"contaminated": int(labels.sum()), "clean": int((~labels).sum()), "threshold": threshold,
            "recall": float((best[labels] > threshold).mean()),
            "fpr": float((best[~labels] > threshold).mean()),
            **{f"top{k}": float((ranks <= k).mean()) for k in TOP_K}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("labelled", nargs="*", type=Path, default=DEFAULT_SETS,
                        help="labelled JSONL sets (default: the calibration set and held-out sets 1 and 3)")
    parser.add_argument("--max-fpr", type=float, default=0.05,
                        help="share of clean rows allowed above the threshold (default: 0.05)")
    args = parser.parse_args()
    embedder = TextEmbedder()
    index = BenchmarkIndex.for_settings(load_benchmarks(), embedder.encode, DecontamSettings())
    task_ids = [it.task_id for it in index.items]
    print(f"{len(index.items)} benchmark items; text-only rows; embedding alone at FPR <= {args.max_fpr:.0%}")
    print(f"{'set':<26} {'contam':>6} {'clean':>6} {'thresh':>7} {'recall':>7} {'FPR':>6} "
          + " ".join(f"{'top' + str(k):>6}" for k in TOP_K))
    for path in args.labelled:
        try:
            rows = load_labelled(path)
        except (OSError, json.JSONDecodeError) as exc:
            raise SystemExit(f"decontam_ceiling: cannot read labelled set {path}: {exc}") from exc
        rows = [r for r in rows if not r.get("solution")]
        if not rows:
            print(f"{path.name:<26} no text-only rows")
            continue
        vectors = embedder.encode([r["instruction"] for r in rows])
        similarities = np.maximum(vectors @ index.vectors.T, vectors @ index.prompt_vectors.T)
        c = ceiling(rows, similarities, task_ids, args.max_fpr)
        print(f"{path.name:<26} {c['contaminated']:>6} {c['clean']:>6} {c['threshold']:>7.3f} {c['recall']:>7.3f} "
              f"{c['fpr']:>6.3f} " + " ".join(f"{c[f'top{k}']:>6.2f}" for k in TOP_K))
    return 0


if __name__ == "__main__":
    sys.exit(main())
