"""Sandbox throughput per language, against baselines measured in the same run.

For every language the sandbox runs (sandbox_image/languages.py), N small programs that differ in a constant (so no
build is reused) run through the bwrap pool, then again (same sources: builds come from the fork-server's cache),
and through the same fork-server with no sandbox at all. Prints, per language:
  - programs/s fresh, and cached (built before)
  - the compile share: the compile step's part of the programs' own wall time
  - sandboxed / unsandboxed programs/s (fresh builds): what the isolation costs in that language
  - programs/s relative to Python's fork-server in the same run

    python benchmarks/sandbox_languages.py [--programs 20] [--workers 2] [--languages cpp,rust]

The programs are this script's own (trusted): the unsandboxed baseline runs them on the host.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from resources.sandbox import UNSAFE_BACKEND, Limits, SandboxPool  # noqa: E402
from sandbox_image.languages import LANGUAGES  # noqa: E402

# One program per language: sums 1..n for n = 1000 + {i} and checks the result with the language's own assert.
TEMPLATES = {
    "python": "n = 1000 + {i}\nassert sum(range(1, n + 1)) == n * (n + 1) // 2\n",
    "bash": "n=$((1000 + {i})); s=0\nfor ((k = 1; k <= n; k++)); do s=$((s + k)); done\n"
            "[ \"$s\" -eq $((n * (n + 1) / 2)) ] || exit 1\n",
    "javascript": "const assert = require('assert');\nconst n = 1000 + {i};\nlet s = 0;\n"
                  "for (let k = 1; k <= n; k++) s += k;\nassert.strictEqual(s, n * (n + 1) / 2);\n",
    "typescript": "declare var require: any;\nconst assert = require('assert');\nconst n: number = 1000 + {i};\n"
                  "let s: number = 0;\nfor (let k = 1; k <= n; k++) s += k;\nassert.strictEqual(s, n * (n + 1) / 2);\n",
    "cpp": "#include <cassert>\nint main() {\n  long n = 1000 + {i}, s = 0;\n  for (long k = 1; k <= n; k++) s += k;\n"
           "  assert(s == n * (n + 1) / 2);\n}\n",
    "c": "#include <assert.h>\nint main(void) {\n  long n = 1000 + {i}, s = 0;\n"
         "  for (long k = 1; k <= n; k++) s += k;\n  assert(s == n * (n + 1) / 2);\n  return 0;\n}\n",
    "rust": "fn main() {\n    let n: u64 = 1000 + {i};\n    let s: u64 = (1..=n).sum();\n"
            "    assert_eq!(s, n * (n + 1) / 2);\n}\n",
    "go": "package main\n\nfunc main() {\n\tn := 1000 + {i}\n\ts := 0\n\tfor k := 1; k <= n; k++ {\n\t\ts += k\n\t}\n"
          "\tif s != n*(n+1)/2 {\n\t\tpanic(\"sum\")\n\t}\n}\n",
    "java": "class Main {\n  public static void main(String[] args) {\n    long n = 1000 + {i}, s = 0;\n"
            "    for (long k = 1; k <= n; k++) s += k;\n    assert s == n * (n + 1) / 2;\n  }\n}\n",
    "php": "<?php\n$n = 1000 + {i};\n$s = 0;\nfor ($k = 1; $k <= $n; $k++) { $s += $k; }\n"
           "assert($s === intdiv($n * ($n + 1), 2));\n",
}


def programs_of(language: str, count: int) -> list[dict]:
    return [{"id": f"{language}-{i}", "code": TEMPLATES[language].replace("{i}", str(i)), "language": language,
             "timeout_s": 60} for i in range(count)]


def timed(pool: SandboxPool, programs: list[dict]) -> tuple[float, list]:
    start = time.perf_counter()
    verdicts = pool.run_batch(programs)
    elapsed = time.perf_counter() - start
    bad = [v for v in verdicts if v.status != "passed"]
    if bad:
        raise SystemExit(f"{bad[0].language}: {len(bad)} programs did not pass, e.g. {bad[0].stderr[-300:]}")
    return len(programs) / elapsed, verdicts


def measure(language: str, count: int, workers: int) -> dict:
    programs = programs_of(language, count)
    with SandboxPool("bwrap", workers, Limits(timeout_s=60)) as pool:
        pool.run_batch([{"id": "warm", "code": "pass"}] * workers)
        fresh, verdicts = timed(pool, programs)
        cached, _ = timed(pool, programs)  # the same sources: each worker's build cache answers what it built
    with SandboxPool(UNSAFE_BACKEND, workers, Limits(timeout_s=60)) as pool:
        pool.run_batch([{"id": "warm", "code": "pass"}] * workers)
        unsandboxed, _ = timed(pool, programs_of(language, count))
    wall = sum(v.wall_ms for v in verdicts)
    compiled = sum(v.compile_ms or 0.0 for v in verdicts)
    return {"language": language, "programs": count, "fresh_per_s": round(fresh, 2), "cached_per_s": round(cached, 2),
            "compile_share": round(compiled / wall, 3) if wall else 0.0,
            "sandboxed_over_unsandboxed": round(fresh / unsandboxed, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--programs", type=int, default=20, help="programs per language (default 20)")
    parser.add_argument("--workers", type=int, default=2, help="sandbox workers (default 2)")
    parser.add_argument("--languages", default=",".join(TEMPLATES), help="comma-separated (default: all)")
    args = parser.parse_args()
    languages = [name for name in args.languages.split(",") if name]
    missing = {name: LANGUAGES[name].missing() for name in languages if LANGUAGES[name].missing()}
    for name, reason in missing.items():
        print(f"skipped {name}: {reason}", file=sys.stderr)
    rows = [measure(name, args.programs, args.workers) for name in languages if name not in missing]
    python = next((r["fresh_per_s"] for r in rows if r["language"] == "python"), None)
    print(f"{'language':<11} {'fresh/s':>8} {'cached/s':>9} {'compile':>8} {'sandbox/bare':>13} {'vs python':>10}")
    for row in rows:
        versus = f"{row['fresh_per_s'] / python:.3f}" if python else "-"
        row["versus_python"] = float(versus) if python else None
        print(f"{row['language']:<11} {row['fresh_per_s']:>8.2f} {row['cached_per_s']:>9.2f} "
              f"{row['compile_share']:>8.1%} {row['sandboxed_over_unsandboxed']:>13.3f} {versus:>10}")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
