"""`crucible demo`: the whole graph offline on the embedded defaults, in four steps, each reported through `say` as it
starts; the summaries of every step come back as one dict, and a step that cannot go on raises `DemoError` with a
one-line reason.

1. HumanEval's canonical solutions (and their `return None` variants) in the sandbox;
2. stdlib seeds -> problems -> verified dialogues -> dedup -> decontamination with the bundled teacher;
3. the SFT dataset and its Hub staging;
4. fine-tuning, the checkpoint's Hub staging, HumanEval pass@1, the student/teacher decision and the next teacher.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass

from assets.keys import VERIFIED_DIALOGUES
from assets.models.evaluation import EvalConfig
from assets.models.training import TrainConfig
from assets.runs import root_cause, run_datasets, run_generation, run_models
from eval.sandbox_demo import run_sandbox_demo
from resources.bundled_models import DEFAULT_MODEL
from resources.embedder import Embedder
from resources.home import Home
from resources.hub import HubPublisher
from resources.llm import TeacherLLM
from resources.llm_server import LocalTeacher
from resources.sandbox import Sandbox

SCORES_QUERY = ('crucible catalog --sql "SELECT model_role, mode, pass_at_1, ci95_low, ci95_high FROM '
                'benchmark_scores"')


class DemoError(RuntimeError):
    """A demo step failed; the message is one line meant for the user."""


@dataclass(frozen=True)
class DemoSettings:
    teacher: str = DEFAULT_MODEL  # the bundled teacher
    seeds: int = 6
    recipe: str = "cpu-smollm2"
    train_steps: int = 5
    eval_limit: int = 5


def run_demo(home: Home, settings: DemoSettings = DemoSettings(), say: Callable[[str], None] = print) -> dict:
    """Run the four steps with everything under `home` (tables, caches, models, releases); returns every step's
    summary."""
    started = time.monotonic()
    root = str(home.root)
    teacher = TeacherLLM(local=LocalTeacher(model=settings.teacher, home=root), home=root)

    def step(n: int, text: str) -> None:
        say(f"crucible demo {n}/4 [{time.monotonic() - started:5.0f} s]: {text} ...")

    step(1, "HumanEval's 164 canonical solutions (and their `return None` variants) in the sandbox")
    sandbox = run_sandbox_demo(home)
    say(f"  canonical solutions: {sandbox['canonical']}; `return None` bodies: {sandbox['return_none']}; "
        f"{sandbox['executed']} run ({sandbox['tasks_per_s']:.0f} programs/s), {sandbox['cached']} from the verdict "
        f"cache; verdicts: {sandbox['path']}")
    if sandbox["canonical"] != {"passed": 164}:
        raise DemoError("the sandbox failed canonical HumanEval solutions; see the verdicts file")
    step(2, f"{settings.seeds} stdlib seeds -> problems -> verified dialogues -> dedup -> decontamination, with the "
            f"bundled teacher ({settings.teacher}; the first run assembles it)")
    # One sampled answer per verified dialogue labels it easy or hard: three would add a few minutes on 2 cores.
    generation = run_generation("stdlib", teacher, Sandbox(home=root), home, seeds=settings.seeds,
                                run_config={"ops": {VERIFIED_DIALOGUES: {"config": {"difficulty_samples": 1}}}},
                                embedder=Embedder(home=root))
    say(json.dumps(generation, indent=2))
    step(3, "the SFT dataset (train/test split, dataset card) and its Hub staging")
    dataset = run_datasets(HubPublisher(home=root), home)
    say(json.dumps(dataset, indent=2))
    if not (dataset["rows"]["train"] or 0):
        raise DemoError("no dialogue survived generation and curation, so there is nothing to train on; rerun with "
                        "more --seeds")
    step(4, f"fine-tuning ({settings.recipe}, {settings.train_steps} steps), the checkpoint's Hub staging, HumanEval "
            f"pass@1 on the first {settings.eval_limit} problems, the student/teacher decision on the held-out split "
            "and the next round's teacher")
    try:
        models = run_models({"hub": HubPublisher(home=root), "teacher": teacher, "sandbox": Sandbox(home=root)}, home,
                            TrainConfig(recipe=settings.recipe, max_steps=settings.train_steps),
                            EvalConfig(limit=settings.eval_limit, evaluate_base=False, evaluate_teacher=False))
    except Exception as exc:  # a failed step: its one-line cause
        raise DemoError(root_cause(exc)) from exc
    say(json.dumps(models, indent=2))
    return {"seconds": round(time.monotonic() - started), "sandbox": sandbox, "generation": generation,
            "dataset": dataset, "models": models}


def where_results_are(home: Home, result: dict) -> str:
    """The closing text: where each result of the demo lies."""
    dataset, models = result["dataset"], result["models"]
    return f"""
Done in {result['seconds']} s. Results:
  tables (Parquet)   {home.data}/<asset>/<partition>.parquet
  catalog            .venv/bin/duckdb {dataset['catalog']}   (a view per asset; or `crucible catalog`)
  SFT dataset        {dataset['release']}   (card: README.md there)
  contamination      {home.data / 'contamination_report'}   (and in the dataset card)
  checkpoint         {models['checkpoint']}   (model card: README.md there)
  scores             benchmark_scores in the catalog:
                     {SCORES_QUERY}
  next teacher       {models['teacher_selection']['decision']}: {models['teacher_selection']['reason']}
                     {home.teacher_state}   (`crucible self-learn` runs further rounds)
  Hub staging        {dataset['hub']['staged']} and {models['hub_model']['staged']}
  plots and reports  {home.reports}
Open the UI with `make ui` (http://127.0.0.1:3000): these runs are in its run history."""
