"""The training budget: ``trainer.max_epochs=auto`` (the default) picks the number of epochs
from the size of the training split, so that a small data set gets the optimizer steps a new
head needs and a large one does not pay for passes it does not need:

    epochs = clamp(ceil(budget.min_steps / steps per epoch), 1, budget.max_epochs)

A number (``trainer.max_epochs=3``) is used as it is. The choice is one log line, and the
resolved number is what ``config.yaml`` records (a resumed run continues with it)."""

from __future__ import annotations

import logging
import math
from typing import Any

import lightning.pytorch as L
from omegaconf import DictConfig, open_dict

log = logging.getLogger(__name__)

AUTO = "auto"
# Placeholder the Trainer is built with until the training split's size is known.
PLACEHOLDER_EPOCHS = 1


def is_auto(cfg: DictConfig) -> bool:
    return str(cfg.trainer.get("max_epochs")) == AUTO


def trainer_overrides(cfg: DictConfig) -> dict[str, Any]:
    """Keyword overrides for building the Trainer: ``auto`` is not a number Lightning takes."""
    return {"max_epochs": PLACEHOLDER_EPOCHS} if is_auto(cfg) else {}


def epochs_for(steps_per_epoch: int, min_steps: int, max_epochs: int) -> int:
    """The fewest epochs that give ``min_steps`` optimizer steps, within [1, max_epochs]."""
    return max(1, min(max_epochs, math.ceil(min_steps / max(1, steps_per_epoch))))


def steps_per_epoch(train_rows: int, batch_size: int, world_size: int, accumulate: int) -> int:
    """Optimizer steps in one pass over ``train_rows`` (the last batch may be short)."""
    batches = math.ceil(train_rows / max(1, batch_size * world_size))
    return max(1, math.ceil(batches / max(1, accumulate)))


def apply(trainer: L.Trainer, cfg: DictConfig, train_rows: int, batch_size: int) -> None:
    """Resolve ``trainer.max_epochs=auto`` for this trainer (its world size and gradient
    accumulation) into ``trainer`` and ``cfg``, with one log line saying why."""
    if not is_auto(cfg):
        return
    budget = cfg.get("budget") or {}
    min_steps, max_epochs = int(budget.get("min_steps", 700)), int(budget.get("max_epochs", 10))
    per_epoch = steps_per_epoch(
        train_rows, batch_size, trainer.world_size, trainer.accumulate_grad_batches
    )
    epochs = epochs_for(per_epoch, min_steps, max_epochs)
    trainer.fit_loop.max_epochs = epochs
    with open_dict(cfg):
        cfg.trainer.max_epochs = epochs
    processes = f" x {trainer.world_size} processes" if trainer.world_size > 1 else ""
    log.info(
        "trainer.max_epochs=auto -> %d epoch%s, %d optimizer steps: %d training rows / batch %d%s "
        "= %d steps per epoch; at least budget.min_steps=%d steps, at most budget.max_epochs=%d",
        epochs,
        "" if epochs == 1 else "s",
        epochs * per_epoch,
        train_rows,
        batch_size,
        processes,
        per_epoch,
        min_steps,
        max_epochs,
    )
