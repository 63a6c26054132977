"""`crucible eval run` on MultiPL-E: a chat model completes each problem's function in its language, and the answers
are scored in the sandbox with pass@k per language (eval/multipl_e_score.py).

    items = load_items("multipl-e-humaneval", Path("rows.jsonl"))     # or None: the Hub
    report = evaluate_multipl_e("multipl-e-humaneval", items, backend, runner, ModeConfig("single"))

The model is shown the problem's prompt (signature and doc comment) in a fenced block of its language, after one
worked example in Lua (eval/prompts/multipl_e.v1.txt), and asked for the completed function in one fenced block.
The answer's code is its first fenced block that holds the prompt's function header, else its first fenced block,
else the whole answer. Code with the header is the program before the tests, a "solution" as eval/multipl_e_score
runs it: what precedes the header (the answer's own imports and helpers, or the prompt's when the answer has no code
before the header), the header, and the rest cut at the item's first stop token, where MultiPL-E cuts a completion
(the tests close the function themselves in most languages). Code without the header is a completion of the prompt,
cut the same way.

Only mode `single`: MultiPL-E's problems have no visible tests apart from the hidden ones, so there is nothing to give
feedback on without showing the model the tests that score it.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from eval.backends import GenRequest
from eval.evaluate import _Labelled, _ordered, fingerprint
from eval.modes import ModeConfig
from eval.multipl_e import HASH_COMMENTS, HUB_DATASET, MultiPLEItem, load_multipl_e
from eval.multipl_e_score import UNSUPPORTED, score_samples, summarize_multipl_e
from eval.pass_at_k import DEFAULT_KS
from eval.prompt_templates import Template, load_template
from eval.samples import Sample, write_samples
from eval.sanitize import FENCE
from eval.scoring import SandboxRunner, manifest
from resources.files import sha256_file
from resources.progress import say

MODES = ("single",)
NAMES = {"cpp": "C++", "javascript": "JavaScript", "java": "Java", "rust": "Rust", "go": "Go", "bash": "Bash",
         "php": "PHP", "typescript": "TypeScript", "python": "Python"}  # sandbox language -> its name in the prompt
# The function's name in a header: the first identifier followed by "(" (type parameters may come between).
FUNCTION_NAME = re.compile(r"([A-Za-z_$][\w$]*)\s*(?:<[^()]*>)?\s*\(")
PYTHON_DEF = re.compile(r"^\s*(?:async\s+)?def\s")


def prompt_template() -> Template:
    return load_template("multipl_e")


def refusal(mode: str) -> str | None:
    """Why `mode` cannot run on MultiPL-E (one line), or None."""
    if mode in MODES:
        return None
    return (f"--mode {mode} is not available for MultiPL-E benchmarks (they have no visible tests to give feedback "
            f"on without showing the hidden ones): use --mode {' or '.join(MODES)}")


def load_items(benchmark: str, benchmark_file: Path | None = None) -> dict[str, MultiPLEItem]:
    """The benchmark's items (eval.multipl_e); ValueError when the Hub cannot be reached and no file was given."""
    items = load_multipl_e(benchmark, benchmark_file)
    if not items:
        raise ValueError(f"benchmark {benchmark} could not be loaded from the Hub ({HUB_DATASET}: offline or "
                         "unreachable); give its rows as a local file with --benchmark-file")
    return items


def messages_for(item: MultiPLEItem, template: Template) -> list[dict]:
    return template.render(language=NAMES.get(item.language, item.language), tag=item.language,
                           prompt=item.prompt.rstrip("\n"))


# -- from an answer to a sample ---------------------------------------------------------------------------------------
def _is_comment(line: str, language: str) -> bool:
    text = line.strip()
    markers = ("#",) if language in HASH_COMMENTS else ("//", "/*", "*")
    return not text or text.startswith(markers)


def header_of(item: MultiPLEItem) -> str | None:
    """The prompt's function header: Python's last `def` line; elsewhere the prompt's last line of code (MultiPL-E's
    prompts end with the signature and its opening brace, after the doc comment)."""
    lines = item.prompt.splitlines()
    if item.language == "python":
        code = [line for line in lines if PYTHON_DEF.match(line)]
    else:
        code = [line for line in lines if not _is_comment(line, item.language)]
    return code[-1] if code else None


def header_pattern(item: MultiPLEItem) -> re.Pattern | None:
    """What finds the header in an answer: the function's name followed by "(", with the word before it in the
    prompt's header ("def", "fn", "function", a return type) before it, as a definition has and a call does not;
    spacing and the rest of the signature may differ."""
    header = header_of(item)
    found = FUNCTION_NAME.search(header) if header else None
    if found is None:
        return None
    before = header[:found.start()].split()
    lead = re.escape(before[-1]) + r"\s+" if before else ""
    return re.compile(rf"(?:^|(?<=\s)){lead}{re.escape(found.group(1))}\s*(?:<[^()]*>)?\s*\(", re.M)


def blocks(text: str) -> list[str]:
    """Every fenced block, whatever its tag, ending in one newline (stop tokens such as Java's "\\n    }\\n" need
    it); an unterminated last fence counts (a reply cut at max_tokens)."""
    return [code.strip("\n") + "\n" for _, code in FENCE.findall(text)]


def sample_of(text: str, item: MultiPLEItem, index: int) -> tuple[Sample, bool]:
    """The answer as eval/multipl_e_score scores it (see the module docstring), and whether it came from a fence."""
    pattern = header_pattern(item)
    found = blocks(text)
    with_header = [b for b in found if pattern and pattern.search(b)]
    code = (with_header or found or [text])[0]
    header = pattern.search(code) if pattern else None
    if header is None:
        return Sample(item.task_id, code, "completion", 0, index), bool(found)
    start = code.rfind("\n", 0, header.start()) + 1
    end = code.find("\n", header.end())
    end = len(code) if end < 0 else end + 1
    before = code[:start]
    if all(_is_comment(line, item.language) for line in before.splitlines()):
        before = item.prompt[:item.prompt.rfind(header_of(item))]
    solution = before + code[start:end] + item.truncate(code[end:])
    return Sample(item.task_id, solution, "solution", 0, index), bool(found)


# -- the run ----------------------------------------------------------------------------------------------------------
def evaluate_multipl_e(benchmark: str, items: dict[str, MultiPLEItem], backend, runner: SandboxRunner,
                       config: ModeConfig, limit: int | None = None, samples_out: Path | None = None,
                       ks=DEFAULT_KS, benchmark_file: Path | None = None) -> dict:
    """Generate `config.n_samples` answers per task and score them: eval/multipl_e_score's report (pass@k overall,
    per language, per benchmark; languages the sandbox cannot run under "unsupported") with the generation's
    manifest."""
    problem = refusal(config.mode)
    if problem:
        raise ValueError(problem)
    started = time.time()
    chosen = list(items.values())[:limit] if limit else list(items.values())
    template = prompt_template()
    languages = sorted({item.language for item in chosen})
    say(f"crucible eval: {len(chosen)} {benchmark} tasks ({', '.join(languages)}) x {config.n_samples} sample(s), "
        "mode single")
    requests = [GenRequest(f"{item.task_id}#{i}@0", messages_for(item, template), seed=config.seed + i)
                for item in chosen for i in range(config.n_samples)]
    answers = _Labelled(backend, "answers").generate(requests, template.version)
    generated_s = time.time() - started
    pairs = [(item, i) for item in chosen for i in range(config.n_samples)]
    built = [sample_of(text, item, i) for (item, i), text in zip(pairs, answers)]
    say("crucible eval: scoring the answers in the sandbox")
    scored = score_samples([sample for sample, _ in built], items, runner)
    report = summarize_multipl_e(scored, items, ks, config.seed)
    if samples_out is not None:
        extra = [{"language": item.language, "fenced": fenced, "raw": text, "messages": [*request.messages, {
                  "role": "assistant", "content": text}]}
                 for (item, _), (_, fenced), text, request in zip(pairs, built, answers, requests)]
        write_samples(samples_out, scored, "evalplus", extra)
    generation = {"model": backend.describe(), "mode": config.mode, "rounds": 0, "n_samples": config.n_samples,
                  "limit": limit, "prompts": {"multipl_e": template.version},
                  "generation_wall_s": round(generated_s, 2)}
    generation["fingerprint"] = fingerprint(generation, config.seed)
    packages = ("openai",) if generation["model"]["backend"] != "transformers" else ("transformers", "torch")
    extra_manifest = {"languages": languages}
    if benchmark_file is not None:
        extra_manifest.update(benchmark_file=str(benchmark_file), benchmark_file_sha256=sha256_file(benchmark_file))
    report["manifest"] = manifest(benchmark, runner, [s for s in scored if s.status != UNSUPPORTED], config.seed,
                                  started, generation=generation, packages=packages, **extra_manifest)
    return _ordered({"benchmark": benchmark, "mode": config.mode, **report}, ("benchmark", "mode", "pass@1"))
