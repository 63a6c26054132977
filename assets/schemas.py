"""The schema of every table, declared once. Assets build their frames with `frame(rows, SCHEMA)`;
`schema_problems` compares a table read back from storage against the same dict; `TABLES` names each stored asset's
schema, row key and required columns (what the stored-table checks in assets/checks/ hold a table to), and
`table_schema` turns one into the column list the Dagster UI shows.
"""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg
import polars as pl

from assets import keys

# The method of a row imported from an external dataset: import:<preset> (assets/imports/presets.py).
IMPORT_METHOD_PREFIX = "import:"

MESSAGES = pl.List(pl.Struct({"role": pl.Utf8, "content": pl.Utf8}))

# One sandbox run: the provenance DESIGN.md asks for on every verified row.
VERDICT = pl.Struct({
    "turn": pl.Int32,
    "status": pl.Utf8,
    "exit_code": pl.Int32,
    "wall_ms": pl.Float64,
    "backend": pl.Utf8,
    "limits": pl.Utf8,  # JSON of resources.sandbox.Limits
    "runner_version": pl.Utf8,
    "stdout": pl.Utf8,  # truncated
    "stderr": pl.Utf8,  # truncated
})
VERDICTS = pl.List(VERDICT)

PROVENANCE = {
    "seed_id": pl.Utf8,
    "source": pl.Utf8,
    "path": pl.Utf8,
    "license": pl.Utf8,
}

SEEDS = {
    **PROVENANCE,
    "language": pl.Utf8,
    "kind": pl.Utf8,  # "function" (a documented function or method) or "window" (1-15 consecutive lines)
    "symbol": pl.Utf8,  # qualified name for functions, null for windows
    "code": pl.Utf8,
    "n_lines": pl.Int32,
}

SEED_REJECTS = {
    "source": pl.Utf8,
    "path": pl.Utf8,
    "symbol": pl.Utf8,
    "reason": pl.Utf8,
    "detail": pl.Utf8,  # e.g. the id of the seed it duplicates
}

GENERATION = {
    # How the row was made (assets/generate/methods): function_instruct, oss_instruct, evol_instruct, ...
    "method": pl.Utf8,
    # The problem or dialogue a derived row was made from (evolved, similar, corrected, followed up, packed: the
    # parents' ids joined with ","); null for rows made from a seed
    "parent_id": pl.Utf8,
    "teacher_model": pl.Utf8,
    "round": pl.Int32,  # the generation round (its teacher: the `teacher` asset)
    "prompt_version": pl.Utf8,
    "config_fingerprint": pl.Utf8,
    "language": pl.Utf8,  # the programming language of the solution: python, cpp, rust, ...
}

PROBLEMS = {
    "problem_id": pl.Utf8,
    **PROVENANCE,
    **GENERATION,
    "instruction": pl.Utf8,  # the self-contained problem statement
    "entry_point": pl.Utf8,  # the function the tests call, when one was found
    "solution": pl.Utf8,  # the reference solution (after repairs)
    "tests": pl.Utf8,  # assert-based tests, no network, no files
    "n_asserts": pl.Int32,
    # "questioner": the tests as written; "reference_outputs": expected values taken from the reference solution's
    # outputs after the repairs ran out (kept only if the programmer's independent first answer agrees)
    "tests_source": pl.Utf8,
    "repair_turns": pl.Int32,  # 0: the first reference passed its own tests
    "attempts": pl.Int32,  # fresh starts it took (1: the first conversation; KodCode-style persistence)
    "messages": MESSAGES,  # the questioner's exchange, repairs included (AIEV-Instruct data in its own right)
    "verdicts": VERDICTS,
}

PROBLEM_REJECTS = {
    "problem_id": pl.Utf8,
    "method": pl.Utf8,
    "parent_id": pl.Utf8,
    "seed_id": pl.Utf8,
    "source": pl.Utf8,
    "reason": pl.Utf8,
    "detail": pl.Utf8,
    "reply": pl.Utf8,  # the teacher's last reply, for debugging the prompt
    "teacher_model": pl.Utf8,
    "round": pl.Int32,
    "messages": MESSAGES,
    "verdicts": VERDICTS,
}

DIALOGUES = {
    "dialogue_id": pl.Utf8,
    "problem_id": pl.Utf8,
    **PROVENANCE,
    "seed": pl.Utf8,  # the code the problem was made from, when the row carries it (imported OSS-Instruct rows)
    **GENERATION,
    "programmer_model": pl.Utf8,
    "feedback_mode": pl.Utf8,  # "execution" or "human_sim"
    "instruction": pl.Utf8,
    "solution": pl.Utf8,  # the final code (passes the tests for verified rows)
    "tests": pl.Utf8,
    "tests_source": pl.Utf8,
    "messages": MESSAGES,
    "turns": pl.Int32,  # programmer answers in the dialogue
    "passed_turn": pl.Int32,  # 1-based turn whose code passed; null when none did
    "verdicts": VERDICTS,
    "prompt_tokens": pl.Int64,
    "completion_tokens": pl.Int64,
    # easy | medium | hard by the share of sampled programmer answers that pass (assets/generate/difficulty.py);
    # null when not measured
    "difficulty": pl.Utf8,
    "sample_pass_rate": pl.Float64,
}

DIALOGUE_REJECTS = {**DIALOGUES, "reason": pl.Utf8, "detail": pl.Utf8}


def frame(rows: list[dict], schema: dict) -> pl.DataFrame:
    """Rows as a DataFrame with exactly `schema`'s columns, in order; missing keys become nulls."""
    return pl.DataFrame([{k: row.get(k) for k in schema} for row in rows], schema=schema, orient="row")


def conform(df: pl.DataFrame, schema: dict) -> pl.DataFrame:
    """`df` with exactly `schema`'s columns in order: missing ones as nulls, the rest cast (tables written before a
    column was added read back without it)."""
    return df.select([pl.col(name).cast(dtype) if name in df.columns else pl.lit(None, dtype).alias(name)
                      for name, dtype in schema.items()])


def schema_problems(df: pl.DataFrame, schema: dict) -> list[str]:
    """What differs between `df` and `schema` (empty when they match)."""
    problems = [f"missing column {name}" for name in schema if name not in df.columns]
    problems += [f"column {name} is {df.schema[name]}, expected {dtype}" for name, dtype in schema.items()
                 if name in df.columns and df.schema[name] != dtype]
    return problems

# Dedup (assets/curate/dedup.py): the rejected dialogues, each naming the kept row it duplicates.
DEDUP_REJECTS = {
    **DIALOGUES,
    "reason": pl.Utf8,  # exact | minhash | embedding
    "duplicate_of": pl.Utf8,  # dialogue_id of the kept row (this partition or an earlier one)
    "similarity": pl.Float64,  # 1.0 exact, estimated Jaccard for minhash, cosine for embedding
}

# Decontamination (assets/curate/decontamination.py): one row per (removed dialogue, layer that fired).
CONTAMINATION_REPORT = {
    "dialogue_id": pl.Utf8,
    "benchmark": pl.Utf8,  # humaneval | mbpp | humaneval_plus | mbpp_plus ...
    "task_id": pl.Utf8,  # the benchmark problem matched, e.g. HumanEval/12 or Mbpp/11
    "layer": pl.Utf8,  # ngram | embedding | execution
    "score": pl.Float64,  # ngram: share of the item field's n-grams; embedding: cosine; execution: 1.0
    "detail": pl.Utf8,  # ngram: the item field matched; embedding: "description"; execution: the bound function
    "instruction": pl.Utf8,
}

# The SFT dataset (assets/release/sft_dataset.py): what users download and TRL trains on. `messages` is the chat as
# the model sees it (TRL's SFTTrainer and the Hub viewer read it directly); the rest is provenance.
SFT = {
    "id": pl.Utf8,  # the dialogue_id
    "split": pl.Utf8,  # train | test, by problem hash
    "messages": MESSAGES,
    "problem_id": pl.Utf8,
    "instruction": pl.Utf8,
    "solution": pl.Utf8,
    "tests": pl.Utf8,
    "tests_source": pl.Utf8,
    "turns": pl.Int32,
    "passed_turn": pl.Int32,
    "feedback_mode": pl.Utf8,
    "method": pl.Utf8,
    "parent_id": pl.Utf8,
    "difficulty": pl.Utf8,
    **PROVENANCE,
    "teacher_model": pl.Utf8,
    "programmer_model": pl.Utf8,
    "round": pl.Int32,
    "language": pl.Utf8,
    "seed": pl.Utf8,
    "prompt_version": pl.Utf8,
    "config_fingerprint": pl.Utf8,  # the generation settings ($CRUCIBLE_HOME/configs/<fp>.json)
    "prompt_tokens": pl.Int64,
    "completion_tokens": pl.Int64,
    "dataset_version": pl.Utf8,  # the fingerprint of this dataset: rows and split settings
}

# Fine-tuned checkpoints (assets/models/training.py): one row per training run.
CHECKPOINTS = {
    "checkpoint": pl.Utf8,  # the folder: model, tokenizer, README.md (model card), training_summary.json
    "model_name": pl.Utf8,
    "recipe": pl.Utf8,
    "recipe_fingerprint": pl.Utf8,
    "method": pl.Utf8,  # full | lora
    "base_model": pl.Utf8,
    "dataset_version": pl.Utf8,
    "dataset_fingerprint": pl.Utf8,  # sha256 of the Parquet files trained on
    "steps": pl.Int64,
    "train_rows": pl.Int64,
    "final_loss": pl.Float64,
    "eval_loss": pl.Float64,  # on the test split, when the recipe evaluates at the end
    "tokens_seen": pl.Int64,
    "tokens_per_second": pl.Float64,
    "wall_seconds": pl.Float64,
    "device": pl.Utf8,
    "precision": pl.Utf8,
    "created_at": pl.Utf8,
}

# Benchmark scores (assets/models/evaluation.py): one row per (model, benchmark, mode) evaluation.
SCORES = {
    "model_role": pl.Utf8,  # checkpoint | base | teacher
    "model": pl.Utf8,  # folder, bundled:<name>, or a served model name
    "model_sha256": pl.Utf8,
    "backend": pl.Utf8,  # transformers | openai | bundled
    "benchmark": pl.Utf8,
    "mode": pl.Utf8,  # single | exec_feedback | human_feedback
    "pass_at_1": pl.Float64,
    "ci95_low": pl.Float64,  # bootstrap over problems
    "ci95_high": pl.Float64,
    "tasks": pl.Int64,
    "samples": pl.Int64,
    "pass_at_1_by_round": pl.Utf8,  # JSON list: after the first answer and each feedback round
    "fingerprint": pl.Utf8,  # what decided the answers (model, decoding, prompts, mode, seed)
    "manifest": pl.Utf8,  # JSON: model, backend, prompts, decoding, sandbox limits, package versions, seed, times
    "checkpoint": pl.Utf8,  # the checkpoint this evaluation round was for
    "dataset_version": pl.Utf8,
    "created_at": pl.Utf8,
}

# The self-learning switch (assets/models/evaluation.py): student vs teacher on the SFT test split.
SELECTION = {
    "round": pl.Int64,  # the generation round whose teacher was compared (resources/teacher_state.py)
    "student": pl.Utf8,
    "teacher": pl.Utf8,
    "mode": pl.Utf8,  # the mode the decision rests on: single | exec_feedback
    "test_rows": pl.Int64,
    "student_passes": pl.Int64,
    "teacher_passes": pl.Int64,
    "student_pass_rate": pl.Float64,
    "teacher_pass_rate": pl.Float64,
    "student_only": pl.Int64,  # discordant problems
    "teacher_only": pl.Int64,
    "difference": pl.Float64,  # student minus teacher pass rate, paired
    "ci_low": pl.Float64,
    "ci_high": pl.Float64,
    "p_value": pl.Float64,  # one-sided exact McNemar
    "confidence": pl.Float64,
    "decision": pl.Utf8,  # student | teacher | undecided
    "selected": pl.Utf8,  # student | teacher
    "reason": pl.Utf8,
    "next_teacher": pl.Utf8,  # the model that generates the next round
    "by_mode": pl.Utf8,  # JSON: every mode's comparison
    "problems": pl.Utf8,  # JSON: per held-out problem, which answer of each model passed
    "dataset_version": pl.Utf8,
    "created_at": pl.Utf8,
}

# The teacher asset (assets/models/teacher.py): one row per round, the teacher that generates it.
TEACHERS = {
    "round": pl.Int64,
    "role": pl.Utf8,  # configured | student
    "model": pl.Utf8,
    "since_round": pl.Int64,
    "reason": pl.Utf8,
    "checkpoint": pl.Utf8,
    "checkpoint_sha256": pl.Utf8,
    "serving": pl.Utf8,  # gguf | command (students)
    "gguf": pl.Utf8,
    "command": pl.Utf8,
    "decided_at": pl.Utf8,
}


# What a column means, by name (a name means the same thing in every table); the UI's Columns tab shows these.
COLUMN_DOCS = {
    "seed_id": "The seed snippet a row descends from (hash of source, path and code).",
    "source": "The seed source (partition): stdlib, a folder, an HF dataset, library:<pkg>.",
    "path": "The seed's file inside its source.",
    "license": "The seed file's licence (SPDX id where known).",
    "language": "Programming language of the seed or of the row's code (python, cpp, rust, ...).",
    "seed": "The code snippet the problem was made from, where the row carries it (imported OSS-Instruct rows).",
    "kind": "function (a documented function or method) or window (1-15 consecutive lines).",
    "symbol": "Qualified name of a function seed; null for windows.",
    "code": "The seed's source code.",
    "n_lines": "Lines of code in the seed.",
    "reason": "Why the row was dropped (a counted drop reason); for a decision or a teacher, why, with the figures.",
    "detail": "More about the reason: the row it duplicates, the failing check, the matched benchmark field.",
    "method": "How the row was made: function_instruct, oss_instruct, evol_instruct, ... (crucible generate "
              "--list-methods).",
    "parent_id": "The problem or dialogue a derived row was made from (packed rows: the members' ids joined with ','); "
                 "null for rows made from a seed.",
    "teacher_model": "The model that wrote the problem.",
    "prompt_version": "Versions of the prompt templates used (assets/prompts/*.vN.txt).",
    "config_fingerprint": "Hash of the frozen generation config ($CRUCIBLE_HOME/configs/<fp>.json).",
    "problem_id": "The problem (hash of its seed, method and statement).",
    "instruction": "The self-contained problem statement.",
    "entry_point": "The function the tests call, when one was found.",
    "solution": "Reference solution (problems) or the final code of the dialogue (passes the tests when verified).",
    "tests": "Assert-based unit tests; no network, no files.",
    "n_asserts": "Assert statements in the tests.",
    "tests_source": "questioner (tests as written) or reference_outputs (expected values from the reference, kept only "
                    "when the programmer's independent answer agrees).",
    "repair_turns": "Questioner repairs before the reference passed its own tests (0: first try).",
    "attempts": "Fresh conversations it took (1: the first).",
    "reply": "The teacher's last reply, for debugging the prompt.",
    "messages": "The conversation as list<struct<role, content>>: the chat format TRL and the Hub viewer read.",
    "verdicts": "Every sandbox run of the row: turn, status, exit code, wall ms, backend, limits, runner version, "
                "truncated stdout/stderr.",
    "dialogue_id": "The dialogue (hash of its problem, programmer and settings).",
    "programmer_model": "The model that answered.",
    "feedback_mode": "execution (the run's output comes back) or human_sim (plus a simulated user's feedback).",
    "turns": "Programmer answers in the dialogue.",
    "passed_turn": "1-based turn whose code passed; null when none did.",
    "prompt_tokens": "Teacher prompt tokens spent on the row.",
    "completion_tokens": "Teacher completion tokens spent on the row.",
    "difficulty": "easy | medium | hard by the share of sampled programmer answers that pass; null when not measured.",
    "sample_pass_rate": "Share of the sampled answers that passed (what difficulty is cut from).",
    "duplicate_of": "dialogue_id of the kept row this one duplicates.",
    "similarity": "1.0 exact, estimated Jaccard for minhash, cosine for embedding.",
    "benchmark": "Benchmark: humaneval | mbpp | humaneval_plus | mbpp_plus.",
    "task_id": "The benchmark problem, e.g. HumanEval/12 or Mbpp/11.",
    "layer": "Decontamination layer that fired: ngram | embedding | execution.",
    "score": "ngram: share of the benchmark field's n-grams; embedding: cosine; execution: 1.0.",
    "id": "Row id (the dialogue_id).",
    "split": "train | test, by root problem hash.",
    "dataset_version": "Fingerprint of the dataset release: rows and split settings.",
    "checkpoint": "The checkpoint folder: model, tokenizer, README.md (model card), training_summary.json.",
    "model_name": "Name of the fine-tuned model.",
    "recipe": "The finetune/recipes recipe trained with.",
    "recipe_fingerprint": "Hash of the recipe's settings.",
    "base_model": "The model fine-tuned.",
    "dataset_fingerprint": "sha256 of the Parquet files trained on.",
    "steps": "Optimizer steps.",
    "train_rows": "Training rows.",
    "final_loss": "Training loss at the last logged step.",
    "eval_loss": "Loss on the test split, when the recipe evaluates at the end.",
    "tokens_seen": "Tokens trained on.",
    "tokens_per_second": "Training throughput.",
    "wall_seconds": "Wall time of the run.",
    "device": "cpu, cuda, ...",
    "precision": "Training precision.",
    "created_at": "When the row was made (UTC, ISO 8601).",
    "model_role": "checkpoint | base | teacher.",
    "model": "A folder, bundled:<name>, or a served model name.",
    "model_sha256": "Hash of the model's weights.",
    "backend": "How answers were produced: transformers | openai | bundled.",
    "mode": "single | exec_feedback | human_feedback (a self-learning decision: the mode it rests on).",
    "pass_at_1": "pass@1 (unbiased estimator over samples).",
    "ci95_low": "Bootstrap 95% interval over problems, low end.",
    "ci95_high": "Bootstrap 95% interval over problems, high end.",
    "tasks": "Benchmark problems scored.",
    "samples": "Answers scored.",
    "pass_at_1_by_round": "JSON list: pass@1 after the first answer and each feedback round.",
    "fingerprint": "What decided the answers: model, decoding, prompts, mode, seed.",
    "manifest": "JSON: model, backend, prompts, decoding, sandbox limits, package versions, seed, times.",
    "student": "The fine-tuned checkpoint compared.",
    "teacher": "The teacher it was compared with.",
    "student_pass_rate": "Student's pass rate on the SFT test split.",
    "teacher_pass_rate": "Teacher's pass rate on the SFT test split.",
    "test_rows": "Test-split problems the comparison rested on.",
    "selected": "student | teacher: which generates the next round.",
    "next_teacher": "The model that generates the next round.",
    "round": "The generation round: 1 with the configured teacher, then one more after each self-learning decision.",
    "student_passes": "Held-out problems the student solved (in the deciding mode).",
    "teacher_passes": "Held-out problems the teacher solved (in the deciding mode).",
    "student_only": "Discordant problems: the student solved it, the teacher did not.",
    "teacher_only": "Discordant problems: the teacher solved it, the student did not.",
    "difference": "Student minus teacher pass rate on the same problems.",
    "ci_low": "Lower end of the paired difference's bootstrap interval.",
    "ci_high": "Upper end of the paired difference's bootstrap interval.",
    "p_value": "One-sided exact McNemar p-value that the student is better.",
    "confidence": "The confidence the student had to be better at.",
    "decision": "student | teacher | undecided (a split too small to decide: the teacher stays).",
    "by_mode": "JSON: the paired comparison in every mode asked for.",
    "problems": "JSON: per held-out problem, which answer of each model passed (null: none).",
    "role": "configured (the teacher set in the resource) | student (a promoted checkpoint).",
    "since_round": "The round this model became the teacher.",
    "checkpoint_sha256": "Hash of the promoted checkpoint's model files.",
    "serving": "How a promoted student is served: gguf (llama.cpp here) | command (a configured server).",
    "gguf": "The GGUF file llama.cpp serves.",
    "command": "The server command template that serves the checkpoint.",
    "decided_at": "When the decision that set this teacher was recorded (UTC).",
}


@dataclass(frozen=True)
class Table:
    """What a stored table is held to: its schema, the columns that identify a row, the columns never null, and
    whether its `messages` are verified dialogues (ending in an assistant turn with code)."""

    schema: dict
    key: tuple[str, ...] = ()
    required: tuple[str, ...] = ()
    dialogue: bool = False
    # Required, and the dialogue shape held, on verified rows only: every row but an imported one taken without
    # verification (`verify: none`), whose answer may be prose and which has no tests or verdicts.
    verified: tuple[str, ...] = ()


def unverified_imports(df: pl.DataFrame) -> pl.Series:
    """Which rows are imported rows taken without verification (method import:*, no passing turn)."""
    if "method" not in df.columns or "passed_turn" not in df.columns:
        return pl.Series([False] * len(df), dtype=pl.Boolean)
    return df.select(pl.col("method").fill_null("").str.starts_with(IMPORT_METHOD_PREFIX)
                     & pl.col("passed_turn").is_null()).to_series()


_DIALOGUE_REQUIRED = ("dialogue_id", "problem_id", "source", "instruction", "messages")
_VERIFIED_REQUIRED = ("solution", "tests", "verdicts")
_VERIFIED = Table(DIALOGUES, ("dialogue_id",), _DIALOGUE_REQUIRED, dialogue=True, verified=_VERIFIED_REQUIRED)
# Generation methods write verified rows only; curated tables also hold imported rows taken as they are.
_GENERATED = Table(DIALOGUES, ("dialogue_id",), _DIALOGUE_REQUIRED + _VERIFIED_REQUIRED, dialogue=True)

# Every asset stored as Parquet, by key.
TABLES: dict[str, Table] = {
    keys.SEED_SNIPPETS: Table(SEEDS, ("seed_id",), ("seed_id", "source", "path", "code")),
    keys.SEED_REJECTS_TABLE: Table(SEED_REJECTS, (), ("source", "reason")),
    keys.OSS_INSTRUCT_PROBLEMS: Table(PROBLEMS, ("problem_id",), ("problem_id", "seed_id", "source", "instruction",
                                                                  "solution", "tests", "messages")),
    keys.PROBLEM_REJECTS_TABLE: Table(PROBLEM_REJECTS, (), ("reason",)),
    keys.VERIFIED_DIALOGUES: _GENERATED,
    keys.DIALOGUE_REJECTS_TABLE: Table(DIALOGUE_REJECTS, ("dialogue_id",), ("dialogue_id", "reason")),
    keys.METHOD_DIALOGUES: _GENERATED,
    keys.IMPORTED_DIALOGUES: _VERIFIED,
    keys.IMPORT_REJECTS_TABLE: Table(DIALOGUE_REJECTS, ("dialogue_id",), ("dialogue_id", "reason")),
    keys.METHOD_REJECTS_TABLE: Table(DIALOGUE_REJECTS, (), ("reason",)),
    keys.DEDUPLICATED_DIALOGUES: _VERIFIED,
    keys.DEDUP_REJECTS_TABLE: Table(DEDUP_REJECTS, ("dialogue_id",), ("dialogue_id", "reason", "duplicate_of")),
    keys.DECONTAMINATED_DIALOGUES: _VERIFIED,
    keys.CONTAMINATION_REPORT_TABLE: Table(CONTAMINATION_REPORT, ("dialogue_id", "benchmark", "task_id", "layer"),
                                           ("dialogue_id", "benchmark", "task_id", "layer")),
    keys.SFT_DATASET: Table(SFT, ("id",), ("id", "split", "messages", "problem_id", "instruction", "dataset_version"),
                            dialogue=True, verified=("solution",)),
    keys.FINETUNED_CHECKPOINT: Table(CHECKPOINTS, ("checkpoint",), ("checkpoint", "recipe", "base_model",
                                                                    "dataset_version")),
    keys.BENCHMARK_SCORES: Table(SCORES, (), ("model_role", "model", "benchmark", "mode", "pass_at_1", "tasks",
                                              "manifest")),
    keys.TEACHER_SELECTION: Table(SELECTION, (), ("round", "student", "teacher", "decision", "selected",
                                                  "next_teacher", "problems")),
    keys.TEACHER: Table(TEACHERS, ("round",), ("round", "role", "model", "since_round", "reason")),
}


def table_schema(table: Table) -> dg.TableSchema:
    """`table` as the Dagster UI's column list: each column's type, meaning, and whether it may be null or repeat."""
    return dg.TableSchema(columns=[
        dg.TableColumn(name, str(dtype), description=COLUMN_DOCS.get(name),
                       constraints=dg.TableColumnConstraints(nullable=name not in table.required,
                                                             unique=table.key == (name,)))
        for name, dtype in table.schema.items()])
