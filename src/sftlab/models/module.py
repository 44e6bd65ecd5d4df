"""The LightningModule: a system around a Hugging Face sequence-classification model."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightning.pytorch as L
import torch
from torch import nn
from torchmetrics import MetricCollection

from sftlab.metrics import classification_metrics, confusion_matrix
from sftlab.models import unpad
from sftlab.optim import OptimizerFromConfig


class SequenceClassifier(OptimizerFromConfig, L.LightningModule):
    """Cross-entropy fine-tuning with one MetricCollection per stage.

    Args:
        model: a ``*ForSequenceClassification`` Hugging Face model (returns ``.logits``).
        label_names: label names in id order (for per-class metric keys).
        optimizer: a partial optimizer (``_partial_: true`` config) awaiting the parameters.
        scheduler: a partial schedule awaiting the optimizer and ``num_training_steps``.
        class_weights: one cross-entropy weight per label (``loss.class_weights``), or None.
        layer_decay: layer-wise lr decay (``optimizer.layer_decay``); None = one lr for all.
        metrics: another task's collection (``sftlab.tasks``); None = single-label metrics.
    """

    def __init__(
        self,
        model: nn.Module,
        label_names: list[str],
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., torch.optim.lr_scheduler.LRScheduler] | None = None,
        class_weights: list[float] | None = None,
        layer_decay: float | None = None,
        metrics: MetricCollection | None = None,
    ):
        super().__init__()
        self.save_hyperparameters(ignore=["model", "optimizer", "scheduler", "metrics"])
        self.model = model
        # from_pretrained() returns a model in eval mode and Lightning keeps sub-module modes:
        # without this, dropout would stay off during training.
        self.model.train()
        self.label_names = list(label_names)
        self.optimizer_fn = optimizer
        self.scheduler_fn = scheduler
        # Not persistent: checkpoints stay loadable into a module built without weights.
        weight = torch.tensor(class_weights, dtype=torch.float) if class_weights else None
        self.register_buffer("class_weights", weight, persistent=False)
        self.layer_decay = layer_decay
        single_label = metrics is None
        metrics = classification_metrics(self.label_names) if single_label else metrics
        self.train_metrics = metrics.clone(prefix="train/")
        self.val_metrics = metrics.clone(prefix="val/")
        self.test_metrics = metrics.clone(prefix="test/")
        self.test_confusion = confusion_matrix(self.label_names) if single_label else None
        self.test_results: dict[str, Any] = {}

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if unpad.is_unpadded(batch):  # a packed training batch (data.unpad)
            return unpad.logits(self.model, batch)
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        return self.model(**inputs).logits

    def _shared_step(self, batch: dict[str, torch.Tensor], stage: str) -> torch.Tensor:
        logits = self(batch).float()
        labels = batch["labels"]
        loss = nn.functional.cross_entropy(logits, labels, weight=self.class_weights)
        preds = logits.argmax(dim=-1)
        metrics = getattr(self, f"{stage}_metrics")
        metrics.update(preds, labels)
        self.log_loss(stage, loss, len(labels))
        if stage == "test":
            self.test_confusion.update(preds, labels)
        return loss

    def log_loss(self, stage: str, loss: torch.Tensor, batch_size: int) -> None:
        """``stage/loss``: per step while training, averaged over the epoch everywhere."""
        self.log(
            f"{stage}/loss",
            loss,
            on_step=stage == "train",
            on_epoch=True,
            prog_bar=True,
            batch_size=batch_size,
        )

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._shared_step(batch, "train")

    def on_train_epoch_end(self) -> None:
        self._log_collection(self.train_metrics)

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._shared_step(batch, "val")

    def on_validation_epoch_end(self) -> None:
        self._log_collection(self.val_metrics, prog_bar=("val/acc", "val/f1_macro"))

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._shared_step(batch, "test")

    def on_test_epoch_end(self) -> None:
        values = self._log_collection(self.test_metrics)
        self.test_results = {k: float(v) for k, v in values.items()}
        self.test_results["test/confusion_matrix"] = self.test_confusion.compute().tolist()
        self.test_confusion.reset()

    def predict_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return torch.softmax(self(batch).float(), dim=-1)

    def _log_collection(
        self, collection, prog_bar: tuple[str, ...] = ()
    ) -> dict[str, torch.Tensor]:
        # ClasswiseWrapper returns a dict per metric, so compute() and log the flat result.
        values = collection.compute()
        for key, value in values.items():
            self.log(key, value, prog_bar=key in prog_bar, sync_dist=False)
        collection.reset()
        return values
