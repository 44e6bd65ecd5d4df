"""The LightningModule: a system around a Hugging Face sequence-classification model."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightning.pytorch as L
import torch
from torch import nn
from torchmetrics import MeanMetric, MetricCollection

from sftlab.models.speed import unpad
from sftlab.strategies.optim import OptimizerFromConfig
from sftlab.tasks.metrics import classification_metrics, confusion_matrix

DEFER_STEPS = 50  # training-metric updates are batched over this many steps


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
        # Evaluation losses as metrics: sum and count are summed over DDP ranks, so val/loss is
        # the mean over every row, however unevenly the rows fall on the ranks.
        self.val_loss, self.test_loss = MeanMetric(), MeanMetric()
        self.test_results: dict[str, Any] = {}
        # Training metrics are updated every DEFER_STEPS steps from the batches in between:
        # torchmetrics' update syncs with the host, which would stall the GPU every step.
        self._train_pending: list[tuple[torch.Tensor, torch.Tensor]] = []
        # sftlab.models.speed.cuda_graphs.GraphedTraining when model.cuda_graphs is on (train.py).
        self.graphed: Callable[[dict[str, torch.Tensor]], torch.Tensor] | None = None

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.graphed is not None and self.training:  # model.cuda_graphs
            return self.graphed(batch)
        if unpad.is_unpadded(batch):  # a packed training batch (data.unpad)
            return unpad.logits(self.model, batch)
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        return self.model(**inputs).logits

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

    def update_metrics(self, stage: str, preds: torch.Tensor, target: torch.Tensor) -> None:
        """``stage``'s metrics; while training, every DEFER_STEPS steps (same values)."""
        if stage != "train":
            getattr(self, f"{stage}_metrics").update(preds, target)
            return
        # A copy: under CUDA graphs the outputs live in buffers the next step overwrites.
        self._train_pending.append((preds.detach().clone(), target.detach()))
        if len(self._train_pending) >= DEFER_STEPS:
            self.flush_train_metrics()

    def flush_train_metrics(self) -> None:
        if self._train_pending:
            preds, target = (torch.cat(parts) for parts in zip(*self._train_pending, strict=True))
            self._train_pending.clear()
            self.train_metrics.update(preds, target)

    def log_loss(self, stage: str, loss: torch.Tensor, batch_size: int) -> None:
        """``stage/loss``: per step while training, averaged over the epoch everywhere (and over
        DDP ranks: early stopping and checkpoints may monitor it)."""
        if stage == "train":
            self.log(
                "train/loss", loss, on_step=True, on_epoch=True, prog_bar=True,
                batch_size=batch_size, sync_dist=True,
            )  # fmt: skip
            return
        mean = getattr(self, f"{stage}_loss")
        mean.update(loss.detach(), weight=batch_size)
        self.log(f"{stage}/loss", mean, on_step=False, on_epoch=True, prog_bar=True)

    def optimizer_zero_grad(self, epoch: int, batch_idx: int, optimizer) -> None:
        # None, never zeros: under CUDA graphs p.grad is the graph's own gradient buffer, which
        # the next replay overwrites; zeroed in place, the next step would add it to itself.
        optimizer.zero_grad(set_to_none=True)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._shared_step(batch, "train")

    def on_train_epoch_end(self) -> None:
        self.flush_train_metrics()
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
