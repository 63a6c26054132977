"""Throughput of the dedup and decontamination embedding path, and of MinHash LSH at scale.

1. Rows/s of the path the assets take (the embedding dedup layer, then the embedding decontamination layer against
   HumanEval + MBPP, through the content-hash cache, empty at the start) as a ratio to a raw
   `SentenceTransformer.encode` of the same texts with the same model object, batch size and precision, measured in
   the same run (alternating, best of --repeats). Goal: >= 0.9.
2. Seconds for exact + MinHash LSH dedup of 100,000 synthetic rows (5% planted near-duplicates, one word
   changed). Goal: <= 60 s on 2 cores.

    python benchmarks/embed_throughput.py [--rows 512] [--lsh-rows 100000] [--precision auto|float32|bfloat16]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from assets.curate.decontam_layers import EMBEDDING, BenchmarkIndex, DecontamSettings, score_layers  # noqa: E402
from assets.curate.dedup_layers import DedupSettings, find_duplicates  # noqa: E402
from eval.benchmarks import load_benchmarks  # noqa: E402
from resources.embedder import TextEmbedder  # noqa: E402

TOPICS = ["a list of integers", "a string of words", "a binary tree", "a CSV file", "a matrix", "a log file",
          "a dictionary of scores", "a stream of events", "a directed graph", "a JSON document"]
TASKS = ["return the longest increasing run", "count how many entries repeat", "group the items by a key",
         "find the first element that breaks the order", "merge neighbouring ranges", "compute a running total",
         "remove entries older than a cut-off", "rank the items by frequency", "validate every field",
         "summarise the values per category"]


def synthetic_instructions(n: int, seed: int = 0) -> list[str]:
    """Distinct OSS-Instruct-like problem statements of ~60-120 words."""
    rng = random.Random(seed)
    words = "value item record entry field window limit order range key count total".split()
    out = []
    for i in range(n):
        filler = " ".join(rng.choice(words) for _ in range(rng.randint(30, 80)))
        out.append(f"Problem {i}: given {rng.choice(TOPICS)}, write a Python function to {rng.choice(TASKS)}. "
                   f"Context: {filler}. Explain edge cases and keep the function pure.")
    return out


def embedding_path(texts: list[str], index: BenchmarkIndex, embedder: TextEmbedder) -> float:
    """Seconds for the dedup embedding layer then the decontamination embedding layer over `texts`."""
    start = time.perf_counter()
    find_duplicates([str(i) for i in range(len(texts))], texts, embed=embedder.encode,
                    settings=DedupSettings(layers=("embedding",)))
    score_layers(index, [{"instruction": t} for t in texts], DecontamSettings(layers=(EMBEDDING,)), embedder.encode)
    return time.perf_counter() - start


def lsh_rows(n: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(20000)]
    texts = [" ".join(rng.choice(vocab) for _ in range(rng.randint(80, 120))) for _ in range(n)]
    for i in range(20, n, 20):  # every 20th row: a copy of an earlier row with one word changed (Jaccard ~0.9)
        words = texts[rng.randrange(i)].split()
        words[rng.randrange(len(words))] = rng.choice(vocab)
        texts[i] = " ".join(words)
    return texts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=512, help="texts for the embedding comparison")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--lsh-rows", type=int, default=100_000)
    parser.add_argument("--precision", default="auto", choices=("auto", "float32", "bfloat16"))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        # The benchmark items' vectors are cached once, as in any run after the first.
        index_embedder = TextEmbedder(precision=args.precision, cache_path=Path(tmp) / "index.sqlite")
        index = BenchmarkIndex(load_benchmarks(), index_embedder.encode)
        model = index_embedder.model
        texts = synthetic_instructions(args.rows)
        model.encode(texts[:64], batch_size=64)  # warm-up
        raw, path = [], []
        for r in range(args.repeats):
            start = time.perf_counter()
            model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_tensor=True)
            raw.append(time.perf_counter() - start)
            embedder = TextEmbedder(precision=args.precision, cache_path=Path(tmp) / f"path{r}.sqlite")
            embedder._model = model  # the same loaded model object as the raw baseline
            path.append(embedding_path(texts, index, embedder))
            assert embedder.encoded == len(texts), "each row must be embedded exactly once along the path"
        raw_rate, path_rate = len(texts) / min(raw), len(texts) / min(path)
        print(f"embedding ({args.precision}, {len(texts)} rows, batch 64, best of {args.repeats}):")
        print(f"  raw SentenceTransformer.encode      {raw_rate:7.1f} rows/s")
        print(f"  dedup + decontamination path (cold) {path_rate:7.1f} rows/s")
        print(f"  ratio {path_rate / raw_rate:.2f} (goal >= 0.9)")

        texts = lsh_rows(args.lsh_rows)
        start = time.perf_counter()
        dups = find_duplicates([str(i) for i in range(len(texts))], texts,
                               settings=DedupSettings(layers=("exact", "minhash")))
        seconds = time.perf_counter() - start
        planted = len(range(20, len(texts), 20))
        found = sum(1 for d in dups if int(d.index) % 20 == 0)
        print(f"MinHash LSH dedup of {len(texts):,} rows: {seconds:.1f} s (goal <= 60 s); "
              f"{found}/{planted} planted near-duplicates found, {len(dups) - found} other rows flagged")
    return 0


if __name__ == "__main__":
    sys.exit(main())
