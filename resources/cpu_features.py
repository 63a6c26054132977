"""What this machine's CPU computes natively, read from /proc/cpuinfo (no dependency that would import torch).

bfloat16 is fast only where the CPU has units for it (AVX512-BF16 or AMX-BF16); elsewhere torch emulates it, and on
an AVX2-only AMD EPYC that was 8x slower than float32 for the embedder (resources/embedder.py) and left 5 LoRA steps
unfinished after 12 minutes (finetune/sft_trainer.py), so both pick bfloat16 on a CPU only when this says yes.
"""

from __future__ import annotations

from pathlib import Path

_NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def native_bf16_cpu(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this CPU computes bfloat16 natively (its flags name AVX512-BF16 or AMX-BF16)."""
    try:
        flags = next((line for line in cpuinfo.read_text().splitlines() if line.startswith("flags")), "")
    except OSError:
        return False
    return any(flag in flags.split() for flag in _NATIVE_BF16_FLAGS)
