"""Regression: one real-valued output per text, trained with MSE (or Huber)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from sftlab.tasks.base import EncoderTask
from sftlab.tasks.metrics import regression_metrics
from sftlab.utils.errors import SftlabError

LOSSES = ("mse", "huber")


class Regressor(EncoderTask):
    """A one-output head with a regression loss and regression metrics.

    Args:
        loss: ``mse`` or ``huber`` (``loss.regression``).
        huber_delta: where Huber turns from squared to linear (``loss.huber_delta``).
        common: ``layer_decay``, ``graphed`` (see ``EncoderTask``).
    """

    PROGRESS = ("val/pearson", "val/mae")

    def __init__(
        self,
        model: nn.Module,
        label_names: list[str],
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., torch.optim.lr_scheduler.LRScheduler] | None = None,
        loss: str = "mse",
        huber_delta: float = 1.0,
        **common: Any,
    ):
        if loss not in LOSSES:
            raise SftlabError(f"loss.regression must be one of {', '.join(LOSSES)}, got '{loss}'")
        super().__init__(model, label_names, optimizer, scheduler, regression_metrics(), **common)
        self.loss_name, self.huber_delta = loss, float(huber_delta)

    def _shared_step(self, batch: dict[str, torch.Tensor], stage: str) -> torch.Tensor:
        preds = self(batch).float().squeeze(-1)
        target = batch["labels"].float()
        if self.loss_name == "huber":
            loss = nn.functional.huber_loss(preds, target, delta=self.huber_delta)
        else:
            loss = nn.functional.mse_loss(preds, target)
        self.update_metrics(stage, preds.detach(), target)
        self.log_loss(stage, loss, len(target))
        return loss

    def predict_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self(batch).float().squeeze(-1)
