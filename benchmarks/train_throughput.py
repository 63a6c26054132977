"""Training throughput of our recipe path (`finetune.sft_run.run`) against a plain TRL SFTTrainer run with TRL's default
settings, on the same data and the same base model, measured in the same process, one after the other.

    python benchmarks/train_throughput.py [--model tiny|smollm2] [--steps N] [--rows N] [--repeats N] [--dataset DIR]

Both count non-padding input tokens (`include_num_input_tokens_seen="non_padding"`) over the wall time of
`trainer.train()`; setup (model load, tokenization) is outside the timing. The plain run changes nothing but the step
count, the output folder and reporting (and sets use_cpu on a CPU machine, without which TRL's default bf16 is refused
there), so it keeps TRL 1.16's defaults: batch 8, gradient checkpointing on, bf16
autocast (also on CPU), full fine-tuning, loss on every token, the base's own chat template. Ours is the recipe as
written (cpu-tiny: full fine-tuning, batch 2, a checkpoint every 4 steps; cpu-smollm2: LoRA, batch 2; fp32 on CPU;
assistant-only loss). Each side runs `--repeats` times, alternating, and the best run counts. Both run under
finetune.sft_run's OMP_WAIT_POLICY=PASSIVE default (see there); OMP_WAIT_POLICY=ACTIVE measures torch's own default.
Without --dataset, a synthetic set in the pipeline's format (tests/finetune/fixture_data.py) is written to a temporary
folder.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from finetune.base_models import resolve_base  # noqa: E402
from finetune.data import load_split  # noqa: E402
from finetune.recipe import load_recipe  # noqa: E402
from finetune.sft_run import quiet_libraries, run  # noqa: E402  (first: it sets OMP_WAIT_POLICY before torch loads)

RECIPES = {"tiny": "cpu-tiny", "smollm2": "cpu-smollm2"}


def ours(recipe, dataset: Path, steps: int, models_dir: Path | None, work: Path) -> tuple[float, int, float]:
    out = Path(tempfile.mkdtemp(dir=work, prefix="ours-"))
    summary = run(recipe, dataset, out, max_steps=steps, models_dir=models_dir, log=lambda _: None)
    return summary["tokens_per_second"], summary["session_tokens"], summary["wall_seconds"]


def plain_trl(base: str, dataset: Path, steps: int, work: Path) -> tuple[float, int, float]:
    import torch
    from transformers import PrinterCallback
    from trl import SFTConfig, SFTTrainer

    out = Path(tempfile.mkdtemp(dir=work, prefix="plain-"))
    # use_cpu on a CPU machine: TRL's default bf16=True is otherwise refused there ("Your setup doesn't support bf16").
    config = SFTConfig(output_dir=str(out), max_steps=steps, report_to="none", disable_tqdm=True,
                       include_num_input_tokens_seen="non_padding", use_cpu=not torch.cuda.is_available())
    trainer = SFTTrainer(model=base, args=config, train_dataset=load_split(dataset, "train"))
    trainer.remove_callback(PrinterCallback)  # output only: its dict lines, not part of training
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    tokens = trainer.state.num_input_tokens_seen
    return tokens / seconds, tokens, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=sorted(RECIPES), default="tiny")
    parser.add_argument("--steps", type=int, help="optimizer steps per run (default: 20 tiny, 4 smollm2)")
    parser.add_argument("--rows", type=int, default=48, help="synthetic training dialogues (without --dataset)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--dataset", type=Path, help="an sft_dataset folder instead of the synthetic one")
    args = parser.parse_args()
    steps = args.steps or (20 if args.model == "tiny" else 4)
    quiet_libraries()
    recipe = load_recipe(RECIPES[args.model])

    with tempfile.TemporaryDirectory(prefix="train-bench-") as tmp:
        work = Path(tmp)
        dataset = args.dataset
        if dataset is None:
            from tests.finetune.fixture_data import write_sft_dataset

            dataset = write_sft_dataset(work / "data", train=args.rows, test=0)
        models_dir = work / "models" if args.model == "tiny" else None  # smollm2: the $CRUCIBLE_HOME cache
        base = resolve_base(recipe.base, dataset, models_dir, log=lambda line: print(line, flush=True))
        print(f"model {args.model} ({base}), {len(load_split(dataset, 'train'))} dialogues, {steps} steps per run",
              flush=True)
        best_ours, best_plain = (0.0, 0, 0.0), (0.0, 0, 0.0)
        for i in range(args.repeats):
            result = ours(recipe, dataset, steps, models_dir, work)
            print(f"  ours  #{i + 1}: {result[0]:9.1f} tokens/s ({result[1]} tokens in {result[2]:.1f} s)", flush=True)
            best_ours = max(best_ours, result)
            result = plain_trl(base, dataset, steps, work)
            print(f"  plain #{i + 1}: {result[0]:9.1f} tokens/s ({result[1]} tokens in {result[2]:.1f} s)", flush=True)
            best_plain = max(best_plain, result)
    print(f"recipe {recipe.name} ({recipe.method}, batch {recipe.train.per_device_train_batch_size}): "
          f"{best_ours[0]:.1f} tokens/s")
    print(f"plain TRL SFTTrainer defaults (full, batch 8, gradient checkpointing, bf16 autocast): "
          f"{best_plain[0]:.1f} tokens/s")
    print(f"ratio ours / plain: {best_ours[0] / best_plain[0]:.2f}")


if __name__ == "__main__":
    main()
