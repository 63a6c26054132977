"""`crucible import` on a few hundred rows in Magicoder-OSS-Instruct's shape: rows at each stage, contamination found
per layer against the rows' labels, and wall time.

    python benchmarks/import_scale.py --home /tmp/imp [--rows 300] [--verify none|tests] [--limit K]
        [--base-url URL --model M]

With `--verify tests` the file holds only the rows that come with code, K of them spread evenly over the file
(labelled paraphrases, clean near misses and stdlib functions alike).

The file is assembled here, so the run can be repeated anywhere:
- every row of the two decontamination labelled sets (tests/data/decontam_labelled.jsonl and decontam_heldout.jsonl,
  204 rows: 109 paraphrases of HumanEval/MBPP problems, most of them text only, and 95 clean rows, most of them near
  misses), the answer a fenced solution where the row has one, else a prose answer (what imported rows often are);
- clean rows from documented functions of the running Python's standard library: the problem is the function's
  signature and the first paragraph of its docstring, the answer its source in a fenced block with a sentence around
  it (Magicoder's shape: prose and code);
- a few exact copies of earlier rows, for dedup.
Labelled sets written later to measure decontamination out of sample must stay out of this file.

The summary is `crucible import`'s JSON; the labels give recall and false positives of the whole import per layer.
"""

from __future__ import annotations

import argparse
import ast
import json
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LABELLED = [ROOT / "tests" / "data" / "decontam_labelled.jsonl", ROOT / "tests" / "data" / "decontam_heldout.jsonl"]
STDLIB_MODULES = ("textwrap.py", "colorsys.py", "statistics.py", "fractions.py", "shlex.py", "fnmatch.py",
                  "posixpath.py", "string.py", "calendar.py", "difflib.py", "heapq.py", "bisect.py", "base64.py",
                  "quopri.py", "html/__init__.py", "urllib/parse.py", "json/encoder.py", "ipaddress.py", "glob.py",
                  "genericpath.py", "keyword.py", "operator.py", "copy.py", "pprint.py", "reprlib.py", "csv.py")
F = "```"


def labelled_rows() -> list[dict]:
    rows = []
    for path in LABELLED:
        for line in path.read_text().splitlines():
            r = json.loads(line)
            code = (r.get("solution") or "").strip()
            answer = (f"Here is one way to do it.\n\n{F}python\n{code}\n{F}\n\nIt handles the cases the problem "
                      "names." if code else
                      "Walk through the input once, keeping what the problem asks for, and return it at the end; the "
                      "edge cases are the empty input and repeated values.")
            rows.append({"problem": r["instruction"], "solution": answer, "lang": "python", "seed": "",
                         "label": {"contaminated": bool(r["contaminated"]), "task_id": r.get("task_id"),
                                   "text_only": not r.get("solution")}})
    return rows


def stdlib_rows(limit: int) -> list[dict]:
    root = Path(sysconfig.get_paths()["stdlib"])
    rows = []
    for name in STDLIB_MODULES:
        source = (root / name).read_text()
        for node in ast.parse(source).body:
            doc = ast.get_docstring(node) if isinstance(node, ast.FunctionDef) else None
            if not doc or node.name.startswith("_") or not 3 <= node.end_lineno - node.lineno <= 25:
                continue
            args = ", ".join(a.arg for a in node.args.args)
            summary = " ".join(doc.split("\n\n")[0].split())
            code = ast.get_source_segment(source, node)
            rows.append({"problem": f"Write a Python function `{node.name}({args})`. {summary}",
                         "solution": f"The function below does this.\n\n{F}python\n{code}\n{F}\n",
                         "lang": "python", "seed": code.splitlines()[0],
                         "label": {"contaminated": False, "task_id": None, "text_only": False}})
            if len(rows) >= limit:
                return rows
    return rows


def assemble(total: int) -> list[dict]:
    rows = labelled_rows()
    rows += stdlib_rows(max(0, total - len(rows) - 6))
    rows += [dict(rows[i]) for i in (0, 50, 120, 210, 230, 240) if i < len(rows)]
    for index, row in enumerate(rows):
        row["index"] = index
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--rows", type=int, default=300)
    parser.add_argument("--verify", choices=("none", "tests"), default="none")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--base-url", default=None)
    parser.add_argument("--model", default=None)
    args = parser.parse_args()
    args.home.mkdir(parents=True, exist_ok=True)
    rows = assemble(args.rows)
    if args.verify == "tests":  # rows without code are rejected before any test is written: leave them out
        rows = [r for r in rows if not r["label"]["text_only"]]
        rows = rows[::max(1, len(rows) // (args.limit or len(rows)))][:args.limit] if args.limit else rows
    data = args.home / "magicoder_shape.jsonl"
    data.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "label"}) + "\n" for r in rows))
    labels = {r["problem"]: r["label"] for r in rows}
    print(f"{data}: {len(rows)} rows, {sum(r['label']['contaminated'] for r in rows)} labelled contaminated "
          f"({sum(r['label']['contaminated'] and r['label']['text_only'] for r in rows)} text only)", flush=True)
    command = [sys.executable, str(ROOT / "cli.py"), "import", "--preset", "magicoder-oss-instruct", "--data",
               str(data), "--name", "magicoder-shape", "--verify", args.verify]
    command += ["--limit", str(args.limit)] if args.limit else []
    command += ["--base-url", args.base_url, "--model", args.model or "default"] if args.base_url else []
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT,
                          env={"PATH": "/usr/bin:/bin", "CRUCIBLE_HOME": str(args.home), "HOME": str(args.home)})
    wall = time.monotonic() - started
    if done.returncode:
        print(done.stderr[-3000:])
        return done.returncode
    summary = json.loads(done.stdout)
    print(json.dumps(summary, indent=1))
    import duckdb

    with duckdb.connect(str(args.home / "crucible.duckdb"), read_only=True) as con:
        flagged = con.execute("SELECT DISTINCT r.instruction, r.layer FROM contamination_report r "
                              "WHERE r.partition = 'magicoder-shape'").fetchall()
        kept = {i for (i,) in con.execute("SELECT instruction FROM deduplicated_dialogues "
                                          "WHERE partition = 'magicoder-shape'").fetchall()}
    by_row: dict[str, set] = {}
    for instruction, layer in flagged:
        by_row.setdefault(instruction, set()).add(layer)
    scanned = [(p, label) for p, label in labels.items() if p in kept]
    positives = [p for p, label in scanned if label["contaminated"]]
    negatives = [p for p, label in scanned if not label["contaminated"]]
    print(f"wall time {wall:.0f} s; rows scanned by decontamination {len(scanned)}: {len(positives)} labelled "
          f"contaminated, {len(negatives)} clean")
    for layer in sorted({layer for layers in by_row.values() for layer in layers}) + ["any"]:
        def hit(p, layer=layer):
            return p in by_row and (layer == "any" or layer in by_row[p])
        found = sum(hit(p) for p in positives)
        text_only = [p for p in positives if labels[p]["text_only"]]
        print(f"  {layer:10s} recall {found}/{len(positives)}  text-only {sum(hit(p) for p in text_only)}/"
              f"{len(text_only)}  false positives {sum(hit(p) for p in negatives)}/{len(negatives)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
