"""Yields of oss_instruct per language with a real teacher: windows of hand-written seed files
(tests/data/seed_code/<language>/, MIT) become problems, tests and sandbox-verified rows in that language.

    python benchmarks/generation_languages.py [--languages cpp,javascript,rust] [--windows 10]
                                              [--base-url URL --model M]   # default: the bundled 1.5B teacher

Prints, per language: windows, rows kept, yield, rows kept only after a repair, every reject reason, teacher tokens
and seconds; then one JSON line. The rows are kept under a scratch CRUCIBLE_HOME (printed), so they can be read.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SEED_CODE = REPO / "tests" / "data" / "seed_code"


def source_name(language: str) -> str:
    return f"seedcode-{language}"


def measure(language: str, windows: int, teacher, sandbox, home) -> dict:
    from assets.generate.seed_sources import register_source
    from assets.runs import run_method

    files = sorted((SEED_CODE / language).iterdir())
    register_source({"kind": "local", "path": str(SEED_CODE / language), "license": "MIT", "languages": [language]},
                    source_name(language), home=home)
    per_file = -(-windows // len(files))  # ceil: the windows come from every file of the language
    config = {"ops": {"method_dialogues": {"config": {
        "difficulty_samples": 0, "oss_instruct": {"language": language, "windows_per_file": per_file}}}}}
    started = time.monotonic()
    summary = run_method("oss_instruct", source_name(language), teacher, sandbox, home, None, config)
    details = summary.get("details") or {}
    drawn = details.get("windows") or 0
    rows = summary.get("rows") or 0
    return {"language": language, "windows": drawn, "rows": rows, "yield": round(rows / drawn, 3) if drawn else None,
            "kept_after_repair": details.get("kept_after_repair"), "rejects": summary.get("rejects"),
            "tokens": summary.get("tokens"), "seconds": round(time.monotonic() - started, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--languages", default="cpp,javascript,rust", help="comma-separated (default cpp,javascript,"
                                                                           "rust)")
    parser.add_argument("--windows", type=int, default=10, help="windows per language (default 10)")
    parser.add_argument("--base-url", default=None, help="an OpenAI-compatible teacher (default: the bundled one)")
    parser.add_argument("--model", default=None, help="the model on --base-url (default: the bundled 1.5B)")
    parser.add_argument("--home", type=Path, default=None, help="CRUCIBLE_HOME to work in (default: a new scratch "
                                                                 "folder); an earlier run's home answers the requests "
                                                                 "it already made from its cache")
    args = parser.parse_args()

    from resources.bundled_models import DEFAULT_MODEL, resolve_model
    from resources.home import Home
    from resources.llm import TeacherLLM
    from resources.llm_server import LocalTeacher
    from resources.sandbox import Sandbox

    resolved = None if args.base_url else resolve_model(DEFAULT_MODEL, Home.from_env().root)
    if args.base_url:
        teacher = TeacherLLM(base_url=args.base_url, model=args.model or "default")
    else:
        teacher = TeacherLLM(local=LocalTeacher(model=str(resolved.path)))
    scratch = args.home or Path(tempfile.mkdtemp(prefix="crucible-languages-"))
    os.environ["CRUCIBLE_HOME"] = str(scratch)
    home = Home.from_env(str(scratch))
    print(f"CRUCIBLE_HOME={scratch}", file=sys.stderr)
    sandbox = Sandbox(workers=2, home=str(home.root))
    results = []
    for language in [name for name in args.languages.split(",") if name]:
        result = measure(language, args.windows, teacher, sandbox, home)
        results.append(result)
        print(f"{language}: {result['rows']}/{result['windows']} windows kept ({result['yield']}), "
              f"{result['kept_after_repair']} after a repair, {result['seconds']} s, rejects {result['rejects']}",
              flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
