"""What the machine can do fast: ``trainer.precision: auto`` and the device a run records.

bf16 is only fast where the hardware computes it natively. On a CPU without AVX512-BF16 or AMX
(e.g. an AVX2-only AMD EPYC) a bf16 matmul ran 24x slower than fp32, so ``auto`` never picks it
there; older CUDA GPUs (before Ampere) get fp16 autocast instead.
"""

from __future__ import annotations

import logging
import platform
from functools import cache
from typing import Any

import torch
from omegaconf import DictConfig, open_dict

log = logging.getLogger(__name__)

AUTO = "auto"


@cache
def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what the platform module says."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_native_bf16() -> bool:
    """True where the CPU computes bf16 natively (AVX512-BF16 or AMX tiles)."""
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def resolve_accelerator(accelerator: str) -> str:
    """``auto`` -> ``cuda`` when a CUDA device is there, else ``cpu``; ``gpu`` -> ``cuda``."""
    accelerator = str(accelerator)
    if accelerator == AUTO:
        return "cuda" if torch.cuda.is_available() else "cpu"
    return "cuda" if accelerator == "gpu" else accelerator


def auto_precision(accelerator: str) -> tuple[str, str]:
    """(Lightning precision, why) for a resolved accelerator."""
    if accelerator == "cuda":
        name = torch.cuda.get_device_name(0)
        if torch.cuda.is_bf16_supported():
            return "bf16-mixed", f"{name} supports bf16"
        return "16-mixed", f"{name} has no bf16: fp16 autocast"
    if accelerator == "cpu":
        if cpu_native_bf16():
            return "bf16-mixed", f"{cpu_name()} has native bf16 (AVX512-BF16/AMX)"
        return (
            "32-true",
            f"{cpu_name()} has no native bf16 (no AVX512-BF16/AMX): bf16 would be slower",
        )
    return "32-true", f"no precision rule for accelerator '{accelerator}'"


def resolve_trainer(cfg: DictConfig) -> None:
    """Replace ``trainer.precision: auto`` in ``cfg`` by what this machine runs fast; log it once.

    Explicit values are kept. The resolved value is what config.yaml and the model card record.
    """
    trainer = cfg.trainer
    if str(trainer.get("precision", AUTO)) != AUTO:
        return
    accelerator = resolve_accelerator(trainer.get("accelerator", AUTO))
    precision, why = auto_precision(accelerator)
    log.info("precision: auto -> %s on %s (%s)", precision, accelerator, why)
    with open_dict(cfg):
        cfg.trainer.precision = precision


def autocast_dtype(precision: str) -> torch.dtype | None:
    """The autocast dtype of a Lightning precision string (None = no autocast)."""
    precision = str(precision)
    if precision.startswith("bf16"):
        return torch.bfloat16
    if precision.startswith("16"):
        return torch.float16
    return None


def device_of(accelerator: str) -> torch.device:
    """Where inference outside the Trainer (head-only feature extraction) should run."""
    return torch.device("cuda" if resolve_accelerator(accelerator) == "cuda" else "cpu")


def run_facts(trainer: Any) -> dict[str, Any]:
    """What a finished run actually used, for metrics.json."""
    root = trainer.strategy.root_device
    extra = {}
    if root.type == "cuda":
        device = torch.cuda.get_device_name(root)
        extra["peak_gpu_memory_gb"] = round(torch.cuda.max_memory_allocated(root) / 2**30, 2)
    else:
        flags = "native bf16" if cpu_native_bf16() else "no native bf16"
        device = f"{cpu_name()} ({flags}, {torch.get_num_threads()} threads)"
    return {
        "precision": str(trainer.precision),
        "accelerator": root.type,
        "device": device,
        "processes": int(trainer.world_size),
        **extra,
    }
