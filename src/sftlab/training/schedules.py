"""Learning-rate schedules: each takes the optimizer and the total number of optimizer steps.

Configs give them as ``_partial_`` nodes; the LightningModule completes them with
``trainer.estimated_stepping_batches``.
"""

from __future__ import annotations

import torch
from transformers import (
    get_constant_schedule_with_warmup,
    get_cosine_schedule_with_warmup,
    get_linear_schedule_with_warmup,
)


def _warmup_steps(num_training_steps: int, warmup_ratio: float) -> int:
    if not 0.0 <= warmup_ratio < 1.0:
        raise ValueError(f"scheduler.warmup_ratio must be in [0, 1), got {warmup_ratio}")
    return int(round(num_training_steps * warmup_ratio))


def linear_warmup(
    optimizer: torch.optim.Optimizer, num_training_steps: int, warmup_ratio: float = 0.06
) -> torch.optim.lr_scheduler.LambdaLR:
    """Ramp up linearly for ``warmup_ratio`` of the steps, then decay linearly to 0."""
    warmup = _warmup_steps(num_training_steps, warmup_ratio)
    return get_linear_schedule_with_warmup(optimizer, warmup, num_training_steps)


def cosine(
    optimizer: torch.optim.Optimizer, num_training_steps: int, warmup_ratio: float = 0.06
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up, then half a cosine down to 0."""
    warmup = _warmup_steps(num_training_steps, warmup_ratio)
    return get_cosine_schedule_with_warmup(optimizer, warmup, num_training_steps)


def constant(
    optimizer: torch.optim.Optimizer, num_training_steps: int, warmup_ratio: float = 0.0
) -> torch.optim.lr_scheduler.LambdaLR:
    """Constant lr after an optional linear warm-up."""
    warmup = _warmup_steps(num_training_steps, warmup_ratio)
    return get_constant_schedule_with_warmup(optimizer, warmup)
