"""Training throughput: seconds spent in training batches, samples/s and real tokens/s.

The clock runs from each training epoch's start to its validation (or its end), so data
loading and optimizer steps count, validation does not. Samples are counted per batch from the
labels' shape and real tokens from the training set's mean length, known in advance: neither
needs a host sync on an accelerator.
"""

from __future__ import annotations

import time

import lightning.pytorch as L
from lightning.pytorch.callbacks import Callback


def _wait_for(pl_module: L.LightningModule) -> None:
    """Let a CUDA device finish its queued work, so the clock reads what the steps took."""
    if pl_module.device.type == "cuda":
        import torch

        torch.cuda.synchronize(pl_module.device)


class Throughput(Callback):
    """``train_seconds``, ``train_samples_per_second``, ``train_tokens_per_second`` (real
    tokens, padding excluded) over every full training epoch."""

    def __init__(self, tokens_per_sample: float):
        self.tokens_per_sample = tokens_per_sample
        self.seconds, self.samples = 0.0, 0
        self._started: float | None = None

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        _wait_for(pl_module)
        self._started = time.perf_counter()

    def _stop(self, pl_module: L.LightningModule) -> None:
        if self._started is not None:
            _wait_for(pl_module)  # the GPU may still run queued steps: they count
            self.seconds += time.perf_counter() - self._started
            self._started = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.samples += len(batch["labels"])

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._stop(pl_module)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._stop(pl_module)

    def results(self) -> dict[str, float]:
        if not self.seconds or not self.samples:
            return {}
        per_second = self.samples / self.seconds
        return {
            "train_seconds": round(self.seconds, 2),
            "train_samples_per_second": round(per_second, 2),
            "train_tokens_per_second": round(per_second * self.tokens_per_sample, 1),
        }
