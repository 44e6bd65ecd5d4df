"""Gradual unfreezing (ULMFiT, Howard & Ruder 2018): start head-only, then unfreeze one more
transformer block from the top every ``every_n_epochs`` epochs (the embeddings come last).
``every_n_epochs`` may be a fraction (0.25: a block every quarter epoch), so a short run still
opens every block.

The optimizer is built once with every parameter that will ever train (``UNFREEZE_LATER``
marks the model); a frozen parameter has no gradient, so AdamW and SGD skip it entirely
(no update, no weight decay) until the callback sets ``requires_grad`` on it. The learning-rate
schedule therefore covers every group from the first step.
"""

from __future__ import annotations

import logging
import math

import lightning.pytorch as L
from torch import nn

from sftlab.strategies.layers import depth_from_top, find_layers, is_head
from sftlab.utils import distributed
from sftlab.utils.errors import SftlabError

log = logging.getLogger(__name__)

UNFREEZE_LATER = "sftlab_unfreeze_later"
"""Attribute set on the model: the optimizer takes frozen parameters too (they unfreeze later)."""


def check_every(every_n_epochs: float) -> float:
    if not every_n_epochs > 0:
        raise SftlabError(
            f"strategy.every_n_epochs must be > 0 (a fraction such as 0.25 is allowed), "
            f"got {every_n_epochs}"
        )
    return float(every_n_epochs)


def gradual(model: nn.Module, every_n_epochs: float = 1) -> nn.Module:
    """Head-only at first; ``GradualUnfreezing`` opens the blocks from the top during training."""
    check_every(every_n_epochs)
    find_layers(model)  # fail now, not at the first unfreeze, on a model without blocks
    unfreeze_top(model, 0)
    setattr(model, UNFREEZE_LATER, True)
    return model


def unfreeze_top(model: nn.Module, n: int) -> int:
    """Head plus the top ``n`` units (blocks from the top, then the embeddings) train; the
    rest is frozen. Returns the number of trainable parameters."""
    prefix, n_layers = find_layers(model)
    trainable = 0
    for name, param in model.named_parameters():
        trains = is_head(name) or depth_from_top(name, prefix, n_layers) <= n
        param.requires_grad_(trains)
        trainable += param.numel() if trains else 0
    if not trainable:
        raise SftlabError(f"strategy=gradual found no head parameters in {type(model).__name__}")
    return trainable


class GradualUnfreezing(L.Callback):
    """At each training batch, the top ``floor(epochs done / every_n_epochs)`` units train, epochs
    done counting fractions of an epoch (a pure function of the position in training, so a
    resumed run unfreezes the same way)."""

    def __init__(self, every_n_epochs: float = 1):
        self.every_n_epochs = check_every(every_n_epochs)
        self.unfrozen = -1
        self.units: int | None = None  # blocks + embeddings, found once at the first call
        self.synced: set[int] = set()  # ids of the parameters DDP averages itself

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # DDP averages the gradients of the parameters that trained when it wrapped the model;
        # the blocks opened later are averaged here (see on_before_optimizer_step).
        self.synced = {id(p) for p in pl_module.parameters() if p.requires_grad}

    def on_before_optimizer_step(
        self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer
    ) -> None:
        if trainer.world_size > 1:
            opened = [
                p for p in pl_module.parameters() if p.requires_grad and id(p) not in self.synced
            ]
            distributed.average_grads(opened)

    def units_open(self, epoch: int, batch_idx: int = 0, batches_per_epoch: float = 1) -> int:
        done = epoch + batch_idx / max(batches_per_epoch, 1)
        return math.floor(done / self.every_n_epochs + 1e-9)

    def open(self, trainer: L.Trainer, pl_module: L.LightningModule, n: int) -> None:
        """Open the top ``n`` units (capped at all of them: blocks + embeddings)."""
        if self.units is None:
            self.units = find_layers(pl_module.model)[1] + 1
        n = min(n, self.units)
        if n == self.unfrozen:
            return
        trainable = unfreeze_top(pl_module.model, n)
        total = sum(p.numel() for p in pl_module.model.parameters())
        log.info(
            "gradual: epoch %d, top %d unit(s) unfrozen; trainable params: %s of %s (%.2f%%)",
            trainer.current_epoch,
            n,
            f"{trainable:,}",
            f"{total:,}",
            100 * trainable / total,
        )
        self.unfrozen = n

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.open(trainer, pl_module, self.units_open(trainer.current_epoch))

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int
    ) -> None:
        batches = trainer.num_training_batches
        if math.isinf(batches):  # an iterable without a length: whole epochs only
            return
        accumulate = max(1, int(getattr(trainer, "accumulate_grad_batches", 1) or 1))
        batch_idx -= batch_idx % accumulate  # a block opens at an optimizer step, not inside one
        self.open(trainer, pl_module, self.units_open(trainer.current_epoch, batch_idx, batches))
