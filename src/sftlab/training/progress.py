"""Progress output: a rich progress bar in a terminal, one plain line per epoch everywhere else.

Piped into a file or a CI log, a live progress bar is only drawn once at the end (wrapped at 80
columns); ``EpochLines`` prints what it would have shown, one readable line per epoch.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import lightning.pytorch as L
from lightning.pytorch.callbacks import Callback, RichProgressBar

from sftlab.utils.progress import interactive

log = logging.getLogger("sftlab.training.progress")

SHOWN = ("train/loss_epoch", "val/loss", "val/acc", "val/f1_macro")


def progress(enabled: bool) -> tuple[list[Callback], dict[str, Any]]:
    """The progress callbacks and the Trainer arguments that go with them."""
    if not enabled:
        return [], {"enable_progress_bar": False}
    if interactive():
        return [RichProgressBar(leave=True)], {"enable_progress_bar": True}
    return [EpochLines()], {"enable_progress_bar": False}


class EpochLines(Callback):
    """``epoch 2/3  train/loss_epoch 0.412  val/loss 0.398  val/acc 0.861  val/f1_macro 0.812  (41 s)``."""

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._started = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        # Every rank reads the metrics: computing a value logged with sync_dist is a collective,
        # and one run on rank 0 alone waits forever for the others (DDP piped into a file).
        metrics = {key: float(v) for key, v in trainer.callback_metrics.items() if key in SHOWN}
        if not trainer.is_global_zero:
            return
        parts = [f"{key} {metrics[key]:.4f}" for key in SHOWN if key in metrics]
        seconds = time.perf_counter() - getattr(self, "_started", time.perf_counter())
        total = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else "?"
        print(
            f"epoch {trainer.current_epoch + 1}/{total}  "
            + "  ".join(parts)
            + f"  ({seconds:.0f} s)",
            flush=True,
        )
