"""Multi-label classification: a set of labels per text, one sigmoid per label (BCE)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from sftlab.tasks.base import EncoderTask
from sftlab.tasks.metrics import multilabel_metrics
from sftlab.utils import distributed

# Candidate thresholds for ``data.threshold=tune``: a coarse grid is enough for F1.
GRID = torch.arange(0.05, 0.951, 0.05)


def best_threshold(probs: torch.Tensor, targets: torch.Tensor) -> float:
    """The grid threshold with the highest micro F1 of ``probs >= t`` against ``targets``
    (ties: the one closest to 0.5)."""
    targets = targets.bool()
    best, best_f1 = 0.5, -1.0
    for t in sorted(GRID.tolist(), key=lambda t: abs(t - 0.5)):
        preds = probs >= t
        tp = (preds & targets).sum().item()
        denom = preds.sum().item() + targets.sum().item()
        f1 = 2 * tp / denom if denom else 1.0
        if f1 > best_f1 + 1e-12:
            best, best_f1 = t, f1
    return round(best, 2)


class MultiLabelClassifier(EncoderTask):
    """BCE-with-logits on multi-hot targets; labels whose probability reaches the threshold
    are predicted.

    Args:
        threshold: a probability, or ``"tune"``: after each validation epoch the micro-F1 best
            threshold on the validation split is kept (saved in checkpoints) and used.
        common: ``layer_decay``, ``graphed`` (see ``EncoderTask``).
    """

    def __init__(
        self,
        model: nn.Module,
        label_names: list[str],
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., torch.optim.lr_scheduler.LRScheduler] | None = None,
        threshold: float | str = 0.5,
        **common: Any,
    ):
        metrics = multilabel_metrics(label_names)
        super().__init__(model, label_names, optimizer, scheduler, metrics, **common)
        self.tune = threshold == "tune"
        # A buffer: the tuned value travels with the best checkpoint.
        self.register_buffer("threshold", torch.tensor(0.5 if self.tune else float(threshold)))
        self._val_probs: list[torch.Tensor] = []
        self._val_targets: list[torch.Tensor] = []

    def _shared_step(self, batch: dict[str, torch.Tensor], stage: str) -> torch.Tensor:
        logits = self(batch).float()
        target = batch["labels"].float()
        loss = nn.functional.binary_cross_entropy_with_logits(logits, target)
        probs = torch.sigmoid(logits.detach())
        if stage == "val":  # metrics after the epoch, once the threshold is known
            self._val_probs.append(probs)
            self._val_targets.append(target.int())
        else:
            self.update_metrics(stage, (probs >= self.threshold).int(), target.int())
        self.log_loss(stage, loss, len(target))
        return loss

    def on_validation_epoch_end(self) -> None:
        if not self._val_probs:
            return
        probs, targets = torch.cat(self._val_probs), torch.cat(self._val_targets)
        self._val_probs, self._val_targets = [], []
        if self.tune and not self.trainer.sanity_checking:
            # Tuned on every rank's rows (the same value on each); the metrics sync themselves.
            everyone = distributed.all_rows(probs), distributed.all_rows(targets)
            self.threshold.fill_(best_threshold(everyone[0].cpu(), everyone[1].cpu()))
        self.val_metrics.update((probs >= self.threshold).int(), targets)
        self._log_collection(self.val_metrics, prog_bar=("val/f1_micro", "val/f1_macro"))
        self.log("val/threshold", self.threshold)

    def on_test_epoch_end(self) -> None:
        super().on_test_epoch_end()
        self.test_results["test/threshold"] = float(self.threshold)

    def predict_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return torch.sigmoid(self(batch).float())

    def extra_export(self) -> dict[str, Any]:
        return {"threshold": round(float(self.threshold), 4)}
