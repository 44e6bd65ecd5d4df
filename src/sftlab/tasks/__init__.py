"""What differs per ``data.task``: the LightningModule, the monitored metric, the head's
``problem_type``. Single-label classification keeps ``SequenceClassifier`` as it is."""

from __future__ import annotations

import logging
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import nn

from sftlab.config.data import DataConfig
from sftlab.tasks.classification import SequenceClassifier

log = logging.getLogger(__name__)

# The Hugging Face ``problem_type``: pipeline() picks softmax / sigmoid / none from it.
PROBLEM_TYPES = {
    "classification": "single_label_classification",
    "multilabel": "multi_label_classification",
    "regression": "regression",
}
# The metric a run of each task selects its best checkpoint by when ``monitor`` names a
# metric that task does not log (e.g. the default val/f1_macro for a regression run).
DEFAULT_MONITOR = {
    "classification": ("val/f1_macro", "max"),
    "multilabel": ("val/f1_micro", "max"),
    "regression": ("val/pearson", "max"),
}
TASK_METRICS = {
    "regression": ("val/mse", "val/mae", "val/pearson", "val/spearman", "val/loss"),
    "multilabel": ("val/f1_micro", "val/f1_macro", "val/precision_micro", "val/recall_micro",
                   "val/exact_match", "val/loss"),
}  # fmt: skip


def monitor(task: str, name: str, mode: str) -> tuple[str, str]:
    """(monitor, mode) that exist for ``task``: the config's, else the task's default."""
    known = TASK_METRICS.get(task)
    if known is None or name in known:
        return name, mode
    default = DEFAULT_MONITOR[task]
    log.info("monitor=%s is not a %s metric: using %s (%s)", name, task, *default)
    return default


def build_module(
    cfg: DictConfig,
    data_cfg: DataConfig,
    model: nn.Module,
    labels: list[str],
    optimizer,
    class_weights=None,
    layer_decay: float | None = None,
) -> SequenceClassifier:
    """The LightningModule for ``data.task`` around ``model`` (a partial ``optimizer``)."""
    if hasattr(model, "config"):  # a cached-features head has no config of its own
        model.config.problem_type = PROBLEM_TYPES[data_cfg.task]
    scheduler = instantiate(cfg.scheduler) if cfg.get("scheduler") else None
    loss: dict[str, Any] = cfg.get("loss") or {}
    if data_cfg.task == "regression":
        from sftlab.tasks.regression import Regressor

        return Regressor(
            model, labels, optimizer, scheduler, layer_decay=layer_decay,
            loss=loss.get("regression", "mse"), huber_delta=loss.get("huber_delta", 1.0),
        )  # fmt: skip
    if data_cfg.task == "multilabel":
        from sftlab.tasks.multilabel import MultiLabelClassifier

        return MultiLabelClassifier(
            model,
            labels,
            optimizer,
            scheduler,
            threshold=data_cfg.threshold,
            layer_decay=layer_decay,
        )
    return SequenceClassifier(
        model, labels, optimizer, scheduler, class_weights=class_weights, layer_decay=layer_decay
    )


def export_extra(module: SequenceClassifier, data_cfg: DataConfig) -> dict[str, Any]:
    """Task keys for ``sftlab.json`` (predict.py reads them)."""
    extra: dict[str, Any] = {"task": data_cfg.task}
    if data_cfg.task == "multilabel":
        from sftlab.data.targets import delimiter

        extra.update(module.extra_export(), label_delimiter=delimiter(data_cfg))
    return extra
