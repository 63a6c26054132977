"""Every asset key and UI group of the graph, in one place.

Stage modules take the keys of the assets they read or write from here, so a stage imports another stage's module
only when it uses that module's code. A key is also the table's folder under the home's data/ and its view in the
DuckDB catalog.
"""

# UI groups, one per phase (assets/generate, assets/curate, assets/release, assets/models).
GENERATE, CURATE, DATASETS, PUBLISH, TRAIN, EVALUATE = ("generate", "curate", "datasets", "publish", "train",
                                                      "evaluate")

# generate
SEED_SNIPPETS, SEED_REJECTS_TABLE = "seed_snippets", "seed_rejects"
OSS_INSTRUCT_PROBLEMS, PROBLEM_REJECTS_TABLE = "oss_instruct_problems", "problem_rejects"
VERIFIED_DIALOGUES, DIALOGUE_REJECTS_TABLE = "verified_dialogues", "dialogue_rejects"
# every method but function_instruct, partitioned by (method, seed source): assets/generate/method_dialogues.py
METHOD_DIALOGUES, METHOD_REJECTS_TABLE = "method_dialogues", "method_rejects"
# import: external instruction datasets as dialogues of their own partition (assets/imports/)
IMPORT = "import"
IMPORTED_DIALOGUES, IMPORT_REJECTS_TABLE = "imported_dialogues", "import_rejects"
# curate
DEDUPLICATED_DIALOGUES, DEDUP_REJECTS_TABLE = "deduplicated_dialogues", "dedup_rejects"
DECONTAMINATED_DIALOGUES, CONTAMINATION_REPORT_TABLE = "decontaminated_dialogues", "contamination_report"
# release
SFT_DATASET = "sft_dataset"
HUB_DATASET, HUB_MODEL = "hub_dataset", "hub_model"
# models
FINETUNED_CHECKPOINT = "finetuned_checkpoint"
BENCHMARK_SCORES, TEACHER_SELECTION = "benchmark_scores", "teacher_selection"
TEACHER = "teacher"  # the current teacher, one row per generation round (assets/models/teacher.py)

# The Dagster concurrency pool of every step that calls the teacher (generation, decontamination, evaluation). Its
# limit is the instance's: `concurrency: pools: default_limit` in dagster.yaml (resources/dagster_home.py,
# deploy/*/dagster.yaml), or a limit set for the pool in the UI (Deployment > Concurrency).
TEACHER_POOL = "teacher"
