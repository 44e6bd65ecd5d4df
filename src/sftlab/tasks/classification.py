"""Single-label classification: cross-entropy (optionally class-weighted), accuracy,
precision, recall and F1 (macro, weighted, per class) and the test confusion matrix."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from sftlab.tasks.base import DEFER_STEPS, EncoderTask
from sftlab.tasks.metrics import classification_metrics, confusion_matrix

__all__ = ["DEFER_STEPS", "SequenceClassifier"]


class SequenceClassifier(EncoderTask):
    """Cross-entropy fine-tuning of a ``*ForSequenceClassification`` model.

    Args:
        class_weights: one cross-entropy weight per label (``loss.class_weights``), or None.
        common: ``layer_decay``, ``graphed`` (see ``EncoderTask``).
    """

    PROGRESS = ("val/acc", "val/f1_macro")

    def __init__(
        self,
        model: nn.Module,
        label_names: list[str],
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., torch.optim.lr_scheduler.LRScheduler] | None = None,
        class_weights: list[float] | None = None,
        **common: Any,
    ):
        metrics = classification_metrics(list(label_names))
        super().__init__(model, label_names, optimizer, scheduler, metrics, **common)
        # Not persistent: checkpoints stay loadable into a module built without weights.
        weight = torch.tensor(class_weights, dtype=torch.float) if class_weights else None
        self.register_buffer("class_weights", weight, persistent=False)
        self.test_confusion = confusion_matrix(self.label_names)

    def _shared_step(self, batch: dict[str, torch.Tensor], stage: str) -> torch.Tensor:
        logits = self(batch).float()
        labels = batch["labels"]
        loss = nn.functional.cross_entropy(logits, labels, weight=self.class_weights)
        preds = logits.argmax(dim=-1)
        self.update_metrics(stage, preds, labels)
        self.log_loss(stage, loss, len(labels))
        if stage == "test":
            self.test_confusion.update(preds, labels)
        return loss

    def on_test_epoch_end(self) -> None:
        super().on_test_epoch_end()
        self.test_results["test/confusion_matrix"] = self.test_confusion.compute().tolist()
        self.test_confusion.reset()

    def predict_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return torch.softmax(self(batch).float(), dim=-1)
