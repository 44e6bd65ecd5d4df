"""What differs per ``data.task``: the LightningModule (``build_module``), the head's
``problem_type`` and the task keys an export records."""

from __future__ import annotations

from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import nn

from sftlab.config.data import DataConfig
from sftlab.data.targets import delimiter
from sftlab.tasks.base import EncoderTask
from sftlab.tasks.classification import SequenceClassifier
from sftlab.tasks.multilabel import MultiLabelClassifier
from sftlab.tasks.regression import Regressor

# The Hugging Face ``problem_type``: pipeline() picks softmax / sigmoid / none from it.
PROBLEM_TYPES = {
    "classification": "single_label_classification",
    "multilabel": "multi_label_classification",
    "regression": "regression",
}


def build_module(
    cfg: DictConfig,
    data_cfg: DataConfig,
    model: nn.Module,
    labels: list[str],
    optimizer,
    class_weights=None,
    layer_decay: float | None = None,
    graphed: Any = None,
    head_lr_scale: float = 1.0,
) -> EncoderTask:
    """The LightningModule for ``data.task`` around ``model`` (a partial ``optimizer``)."""
    if hasattr(model, "config"):  # a cached-features head has no config of its own
        model.config.problem_type = PROBLEM_TYPES[data_cfg.task]
    scheduler = instantiate(cfg.scheduler) if cfg.get("scheduler") else None
    loss: dict[str, Any] = cfg.get("loss") or {}
    if data_cfg.task == "regression":
        return Regressor(
            model,
            labels,
            optimizer,
            scheduler,
            loss=loss.get("regression", "mse"),
            huber_delta=loss.get("huber_delta", 1.0),
            layer_decay=layer_decay,
            graphed=graphed,
            head_lr_scale=head_lr_scale,
        )
    if data_cfg.task == "multilabel":
        return MultiLabelClassifier(
            model,
            labels,
            optimizer,
            scheduler,
            threshold=data_cfg.threshold,
            layer_decay=layer_decay,
            graphed=graphed,
            head_lr_scale=head_lr_scale,
        )
    return SequenceClassifier(
        model,
        labels,
        optimizer,
        scheduler,
        class_weights=class_weights,
        layer_decay=layer_decay,
        graphed=graphed,
        head_lr_scale=head_lr_scale,
    )


def export_extra(module: EncoderTask, data_cfg: DataConfig) -> dict[str, Any]:
    """Task keys for ``sftlab.json`` (predict.py reads them)."""
    extra: dict[str, Any] = {"task": data_cfg.task}
    if data_cfg.task == "multilabel":
        extra.update(module.extra_export(), label_delimiter=delimiter(data_cfg))
    return extra
