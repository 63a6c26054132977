"""Supervised fine-tuning on Crucible's datasets: TRL SFT recipes (recipes/*.yaml) and `python -m finetune.train`.

recipe.py (the YAML schema), data.py (the sft_dataset folder), chat_template.py (assistant-only loss masks),
base_models.py with tiny.py and smollm2.py (where the weights come from), train.py (the entry point),
model_card.py (the checkpoint's README.md).
"""
