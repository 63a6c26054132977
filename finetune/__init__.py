"""Supervised fine-tuning on Crucible's datasets: TRL SFT recipes (recipes/*.yaml) and `python -m finetune.train`.

recipe.py (the YAML schema), data.py (the sft_dataset folder), chat_template.py (assistant-only loss masks),
base_models.py with tiny.py and smollm2.py (where the weights come from), sft_trainer.py (TRL's trainer from a
recipe), sft_run.py (one run: train, test loss, save), resume.py (checkpoints and resuming), summary.py
(training_summary.json), model_card.py (the checkpoint's README.md), train.py (the entry point).
"""
