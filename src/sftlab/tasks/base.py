"""``EncoderTask``: the LightningModule shared by the encoder tasks (classification,
multi-label, regression): a system around a Hugging Face model with a head, one
MetricCollection cloned per stage, evaluation losses as metrics, deferred training metrics.
Each task subclass supplies its loss and metrics (``_shared_step``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightning.pytorch as L
import torch
from torch import nn
from torchmetrics import MeanMetric, MetricCollection

from sftlab.models.speed import unpad
from sftlab.strategies.optim import OptimizerFromConfig

DEFER_STEPS = 50  # training-metric updates are batched over this many steps


class EncoderTask(OptimizerFromConfig, L.LightningModule):
    """The shared system; a subclass defines ``_shared_step(batch, stage) -> loss``.

    Args:
        model: a Hugging Face model with a head (returns ``.logits``), or a head on cached
            features.
        label_names: label names in id order (for per-class metric keys).
        optimizer: a partial optimizer (``_partial_: true`` config) awaiting the parameters.
        scheduler: a partial schedule awaiting the optimizer and ``num_training_steps``.
        metrics: the task's MetricCollection, cloned per stage.
        layer_decay: layer-wise lr decay (``optimizer.layer_decay``); None = one lr for all.
        head_lr_scale: the task head's lr over the body's (``optimizer.head_lr_scale``).
        graphed: the CUDA-graph training step (``model.cuda_graphs``), or None.
    """

    PROGRESS: tuple[str, ...] = ()  # validation metrics shown in the progress bar

    def __init__(
        self,
        model: nn.Module,
        label_names: list[str],
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., torch.optim.lr_scheduler.LRScheduler] | None = None,
        metrics: MetricCollection | None = None,
        layer_decay: float | None = None,
        graphed: Any = None,
        head_lr_scale: float = 1.0,
    ):
        super().__init__()
        self.save_hyperparameters(ignore=["model", "optimizer", "scheduler", "metrics", "graphed"])
        self.model = model
        # from_pretrained() returns a model in eval mode and Lightning keeps sub-module modes:
        # without this, dropout would stay off during training.
        self.model.train()
        self.label_names = list(label_names)
        self.optimizer_fn = optimizer
        self.scheduler_fn = scheduler
        self.layer_decay = layer_decay
        self.head_lr_scale = head_lr_scale
        self.train_metrics = metrics.clone(prefix="train/")
        self.val_metrics = metrics.clone(prefix="val/")
        self.test_metrics = metrics.clone(prefix="test/")
        # Evaluation losses as metrics: sum and count are summed over DDP ranks, so val/loss is
        # the mean over every row, however unevenly the rows fall on the ranks.
        self.val_loss, self.test_loss = MeanMetric(), MeanMetric()
        self.test_results: dict[str, Any] = {}
        # Training metrics are updated every DEFER_STEPS steps from the batches in between:
        # torchmetrics' update syncs with the host, which would stall the GPU every step.
        self._train_pending: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.graphed = graphed

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.graphed is not None and self.training:  # model.cuda_graphs
            return self.graphed(batch)
        if unpad.is_unpadded(batch):  # a packed training batch (data.unpad)
            return unpad.logits(self.model, batch)
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        return self.model(**inputs).logits

    def _shared_step(self, batch: dict[str, torch.Tensor], stage: str) -> torch.Tensor:
        raise NotImplementedError  # the task's loss and metric updates

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
                "train/loss",
                loss,
                on_step=True,
                on_epoch=True,
                prog_bar=True,
                batch_size=batch_size,
                sync_dist=True,
            )
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
        self._log_collection(self.val_metrics, prog_bar=self.PROGRESS)

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._shared_step(batch, "test")

    def on_test_epoch_end(self) -> None:
        values = self._log_collection(self.test_metrics)
        self.test_results = {k: float(v) for k, v in values.items()}

    def release_graphs(self) -> dict[str, Any]:
        """Free the CUDA graphs after fit (evaluation runs eagerly); their facts for
        metrics.json."""
        if self.graphed is None:
            return {}
        facts = self.graphed.facts()
        self.graphed.release()
        self.graphed = None
        return facts

    def _log_collection(
        self, collection, prog_bar: tuple[str, ...] = ()
    ) -> dict[str, torch.Tensor]:
        # ClasswiseWrapper returns a dict per metric, so compute() and log the flat result.
        values = collection.compute()
        for key, value in values.items():
            self.log(key, value, prog_bar=key in prog_bar, sync_dist=False)
        collection.reset()
        return values
