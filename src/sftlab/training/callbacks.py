"""Callbacks a run adds from its config: early stopping on the monitored metric
(``early_stopping.patience``)."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as L
from lightning.pytorch.callbacks import EarlyStopping
from lightning.pytorch.callbacks.early_stopping import EarlyStoppingReason

from sftlab.utils.errors import SftlabError


class ResumableEarlyStopping(EarlyStopping):
    """``EarlyStopping`` that stops a resumed run again: a run killed after it stopped early (in
    its test or export) resumes from the ``last.ckpt`` of its last epoch, and Lightning does not
    save ``trainer.should_stop``, so it would train on."""

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.stopping_reason != EarlyStoppingReason.NOT_STOPPED:  # restored from the checkpoint
            trainer.should_stop = True


def early_stopping(cfg: Any, monitor: str, mode: str) -> list[EarlyStopping]:
    """``[EarlyStopping]`` on the monitored metric when ``early_stopping.patience`` is set, else []."""
    settings = cfg.get("early_stopping") or {}
    patience = settings.get("patience")
    if patience is None:
        return []
    if not isinstance(patience, int) or patience < 1:
        raise SftlabError(
            f"early_stopping.patience must be a whole number >= 1 (or null: off), got {patience!r}"
        )
    return [
        ResumableEarlyStopping(
            monitor=monitor,
            mode=mode,
            patience=patience,
            min_delta=float(settings.get("min_delta", 0.0)),
            verbose=True,
        )
    ]
