"""The one catalogue of metric names: what each ``data.task`` logs, which metric a run
monitors by default, and how a label appears inside a metric key. Read by the config check
(before torch), the task modules, the report and the sweep summaries."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

PER_CLASS = ("recall", "f1")  # classification metrics logged once per label: val/f1_<label>
CLASSIFICATION = (
    "acc",
    "precision_macro",
    "recall_macro",
    "f1_macro",
    "precision_weighted",
    "recall_weighted",
    "f1_weighted",
    "loss",
)
TASK_METRICS = {
    "classification": CLASSIFICATION,
    "multilabel": (
        "f1_micro",
        "f1_macro",
        "precision_micro",
        "recall_micro",
        "exact_match",
        "loss",
        "threshold",
    ),
    "regression": ("mse", "mae", "pearson", "spearman", "loss"),
    "generation": ("loss", "perplexity"),
}
DEFAULT_METRIC = "val/f1_macro"  # conf/train.yaml's monitor and optimized_metric
RUN_KEYS = (
    "trainable_params",
    "total_params",
    "epochs",
    "fit_seconds",
    "train_rows",
    "wall_seconds",
)

# The metric (and mode) a run of each task selects its best checkpoint by when ``monitor``
# names a metric that task does not log (e.g. the default val/f1_macro on a regression run).
DEFAULT_MONITOR = {
    "classification": ("val/f1_macro", "max"),
    "multilabel": ("val/f1_micro", "max"),
    "regression": ("val/pearson", "max"),
    "generation": ("val/loss", "min"),
}


def known_metrics(task: str, labels: list[str] | None, stage: str = "val") -> set[str] | None:
    """The ``stage/*`` keys ``task`` logs; None when they depend on labels not known yet."""
    keys = {f"{stage}/{m}" for m in TASK_METRICS.get(task, ())}
    if task == "classification":
        if labels is None:
            return None
        keys |= {f"{stage}/{m}_{safe_label(label)}" for m in PER_CLASS for label in labels}
    return keys


def safe_label(label: Any) -> str:
    """A label as it can appear inside a metric key (W&B panels dislike '/' and spaces)."""
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in str(label))


def resolve_metric(name: str, task: str) -> str:
    """The default ``val/f1_macro`` stands for the task's own metric on other tasks."""
    if name == DEFAULT_METRIC and task != "classification":
        return DEFAULT_MONITOR[task][0]
    return name


def monitor(task: str, name: str, mode: str) -> tuple[str, str]:
    """(monitor, mode) that exist for ``task``: the config's, else the task's default."""
    if task == "classification" or name in known_metrics(task, [], "val"):
        return name, mode
    default = DEFAULT_MONITOR[task]
    log.info("monitor=%s is not a %s metric: using %s (%s)", name, task, *default)
    return default
