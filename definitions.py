"""The one Dagster `Definitions` for Crucible: assets, checks, resources, jobs, schedules and sensors.

Stage logic lives in assets/ and resources/; this module only assembles them. Settings come from environment
variables through `dg.EnvVar` (resolved at run time, secrets never stored in run config) with offline defaults.
"""

import os

import dagster as dg

from assets.attributes import with_attributes
from assets.automation import (
    curate_job,
    dataset_job,
    evaluate_job,
    evaluation_automation,
    generate_job,
    import_job,
    ingest_job,
    method_job,
    nightly_generation,
    seed_source_sensor,
    train_job,
)
from assets.checks.dagster_checks import stored_checks
from assets.curate.decontamination import decontaminated_dialogues
from assets.curate.dedup import deduplicated_dialogues
from assets.generate.dialogues import verified_dialogues
from assets.generate.method_dialogues import method_dialogues
from assets.generate.problems import oss_instruct_problems
from assets.generate.seeds import seed_snippets
from assets.imports.imported import imported_dialogues
from assets.models.evaluation import benchmark_scores
from assets.models.teacher import teacher
from assets.models.teacher_selection import teacher_selection
from assets.models.training import finetuned_checkpoint, local_trainer
from assets.release.publish import hub_dataset, hub_model
from assets.release.sft_dataset import sft_dataset
from resources.embedder import DEFAULT_PRECISION, Embedder
from resources.hub import HubPublisher
from resources.llm import TeacherLLM
from resources.llm_server import LocalTeacher
from resources.sandbox import Sandbox
from resources.store import ParquetIOManager


def _env(name: str, default=None, kind=str):
    """`dg.EnvVar(name)` when the variable is set, else the offline default."""
    if not os.environ.get(name):
        return default
    return dg.EnvVar.int(name) if kind is int else dg.EnvVar(name)


# One home for every resource that keeps files (tables, caches, models, staging): CRUCIBLE_HOME, else ./.crucible.
HOME = _env("CRUCIBLE_HOME")

# Kinds, code versions and column schemas on every asset (assets/attributes.py).
ASSETS = with_attributes([seed_snippets, oss_instruct_problems, verified_dialogues, method_dialogues,
                          imported_dialogues, deduplicated_dialogues, decontaminated_dialogues, sft_dataset,
                          hub_dataset, finetuned_checkpoint, hub_model, benchmark_scores, teacher_selection, teacher])

defs = dg.Definitions(
    assets=ASSETS,
    # Checks that read what each asset stored (assets/checks/registry.py); `crucible check` runs the same ones.
    asset_checks=stored_checks(ASSETS),
    # In-process: a run's steps share one process, so the teacher server, sandbox pool and embedder start once per
    # run instead of once per step (a small dataset run: ~5 s instead of ~23 s). Partitions run in parallel as
    # separate runs (see README "Past one machine").
    executor=dg.in_process_executor,
    jobs=[generate_job, method_job, curate_job, ingest_job, import_job, dataset_job, train_job, evaluate_job],
    schedules=[nightly_generation],
    sensors=[seed_source_sensor, evaluation_automation],
    resources={
        "io_manager": ParquetIOManager(home=HOME),
        # finetuned_checkpoint's launcher: `python -m finetune.train` as a child process reporting through Dagster
        # Pipes; another Pipes client (a Kubernetes pod, say) can take its place.
        "trainer": local_trainer(),
        "sandbox": Sandbox(
            backend=_env("CRUCIBLE_SANDBOX_BACKEND", "bwrap"),
            workers=_env("CRUCIBLE_SANDBOX_WORKERS", 2, int),
            home=HOME,
        ),
        "embedder": Embedder(
            model=_env("CRUCIBLE_EMBED_MODEL", "bundled"),
            precision=DEFAULT_PRECISION,  # CRUCIBLE_EMBED_PRECISION, else auto (resources/embedder.py)
            home=HOME,
        ),
        # Without HF_TOKEN and a repo id, hub_* assets stage and validate the folders under $CRUCIBLE_HOME/hub/.
        "hub": HubPublisher(
            token=_env("HF_TOKEN"),
            dataset_repo=_env("CRUCIBLE_HUB_DATASET_REPO"),
            model_repo=_env("CRUCIBLE_HUB_MODEL_REPO"),
            private=os.environ.get("CRUCIBLE_HUB_PUBLIC", "") not in ("1", "true", "yes"),
            endpoint=_env("HF_ENDPOINT"),
            home=HOME,
        ),
        # With CRUCIBLE_LLM_BASE_URL unset, the bundled offline teacher is started on first use.
        "teacher": TeacherLLM(
            base_url=_env("CRUCIBLE_LLM_BASE_URL"),
            model=_env("CRUCIBLE_LLM_MODEL"),
            api_key=_env("OPENAI_API_KEY"),
            local=LocalTeacher(model=_env("CRUCIBLE_TEACHER_MODEL", "qwen2.5-coder-1.5b"), home=HOME),
            home=HOME,
        ),
    },
)
