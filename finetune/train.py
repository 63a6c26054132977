"""Supervised fine-tuning on the pipeline's sft_dataset with TRL's SFTTrainer: the thin entry point of finetune/.

    python -m finetune.train --recipe finetune/recipes/cpu-tiny.yaml --dataset DIR [--output DIR] [--max-steps N]
                             [--resume [CHECKPOINT]] [--base PATH_OR_HUB_ID] [--models-dir DIR]

Full fine-tuning or LoRA (recipe `method`), loss on assistant tokens only (see finetune/chat_template.py), optional
packing, bf16 on a GPU, fixed seeds. A run resumes from the newest checkpoint-N in the output folder by itself
(`--resume` makes a missing one an error, `--resume PATH` names one). The output folder ends up holding the model
(LoRA: merged, the adapter in adapter/), its tokenizer with the training chat template, README.md (the model card) and
training_summary.json. Progress goes to stdout as `[train] key=value ...` lines, one per logging step. Exit status 2
with one line on stderr for a bad recipe, dataset or template. Launched by Dagster through Pipes (the
finetuned_checkpoint asset), the same lines go to the run's log and the finished run is reported to the asset
(finetune/pipes_report.py).

Only argument parsing and printing live here; the work is finetune.sft_run.run_recipe (the trainer it builds is in
finetune/sft_trainer.py, resuming in finetune/resume.py, the summary and model card in finetune/summary.py).
"""

from __future__ import annotations

import argparse
import sys

from finetune.pipes_report import ERROR_PREFIX, trainer_report  # dagster_pipes only: no torch

# Before anything that loads torch: finetune.sft_run sets OMP_WAIT_POLICY.
from finetune.sft_run import USER_ERRORS, run_recipe


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m finetune.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", required=True, help="a recipe YAML, or a bundled recipe's name (cpu-tiny)")
    parser.add_argument("--dataset", help="the sft_dataset folder (train.parquet/test.parquet or data/*.parquet), "
                                          "or a Hub dataset id in that layout, namespace/name[@revision] (fetched "
                                          "from HF_ENDPOINT; HF_HUB_OFFLINE=1: the cache only); default: the "
                                          "recipe's `dataset`")
    parser.add_argument("--output", help="output folder; default $CRUCIBLE_HOME/checkpoints/<recipe>-<fp>-<data fp>")
    parser.add_argument("--max-steps", type=int, help="override the recipe's max_steps (e.g. a few steps in a demo)")
    parser.add_argument("--resume", nargs="?", const=True, default=None,
                        help="resume from the newest checkpoint in --output (error if none) or from the given one; "
                             "without it a run still resumes when --output has checkpoints")
    parser.add_argument("--base", help="override the recipe's base with a local model folder or a hub id")
    parser.add_argument("--models-dir", help="where built and converted bases are cached ($CRUCIBLE_HOME/models)")
    args = parser.parse_args(argv)

    with trainer_report() as report:
        try:
            summary = run_recipe(args.recipe, args.dataset, args.output, args.max_steps, args.resume, args.base,
                                 args.models_dir, log=report.log)
        except USER_ERRORS as error:
            report.error(f"{ERROR_PREFIX}{error}")
            return 2
        report.finished(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
