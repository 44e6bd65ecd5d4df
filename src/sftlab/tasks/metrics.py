"""torchmetrics collections per task. One collection is built, then cloned per stage."""

from __future__ import annotations

from torchmetrics import ClasswiseWrapper, MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassPrecision,
    MulticlassRecall,
    MultilabelExactMatch,
    MultilabelF1Score,
    MultilabelPrecision,
    MultilabelRecall,
)
from torchmetrics.regression import (
    MeanAbsoluteError,
    MeanSquaredError,
    PearsonCorrCoef,
    SpearmanCorrCoef,
)

from sftlab.config.checks import safe_label


def classification_metrics(label_names: list[str]) -> MetricCollection:
    """Accuracy, macro/weighted precision-recall-F1, and recall and F1 per class, named by label.

    Keys after ``.clone(prefix="test/")``: ``test/acc``, ``test/f1_macro``, ``test/recall_neutral``...
    """
    n = len(label_names)
    names = [safe_label(label) for label in label_names]
    return MetricCollection(
        {
            "acc": MulticlassAccuracy(n, average="micro"),
            "precision_macro": MulticlassPrecision(n, average="macro"),
            "recall_macro": MulticlassRecall(n, average="macro"),
            "f1_macro": MulticlassF1Score(n, average="macro"),
            "precision_weighted": MulticlassPrecision(n, average="weighted"),
            "recall_weighted": MulticlassRecall(n, average="weighted"),
            "f1_weighted": MulticlassF1Score(n, average="weighted"),
            "recall": ClasswiseWrapper(MulticlassRecall(n, average=None), names, prefix="recall_"),
            "f1": ClasswiseWrapper(MulticlassF1Score(n, average=None), names, prefix="f1_"),
        }
    )


def confusion_matrix(label_names: list[str]) -> MulticlassConfusionMatrix:
    """Rows are true labels, columns predicted labels, in ``label_names`` order."""
    return MulticlassConfusionMatrix(len(label_names))


def regression_metrics() -> MetricCollection:
    """One real-valued output: ``mse``, ``mae``, ``pearson``, ``spearman``."""
    return MetricCollection(
        {
            "mse": MeanSquaredError(),
            "mae": MeanAbsoluteError(),
            "pearson": PearsonCorrCoef(),
            "spearman": SpearmanCorrCoef(),
        }
    )


def multilabel_metrics(label_names: list[str]) -> MetricCollection:
    """Label sets, updated with 0/1 predictions (the threshold is applied by the caller):
    micro and macro F1/precision/recall, exact-match accuracy and F1 per label."""
    n = len(label_names)
    names = [safe_label(label) for label in label_names]
    return MetricCollection(
        {
            "f1_micro": MultilabelF1Score(n, average="micro"),
            "f1_macro": MultilabelF1Score(n, average="macro"),
            "precision_micro": MultilabelPrecision(n, average="micro"),
            "recall_micro": MultilabelRecall(n, average="micro"),
            "exact_match": MultilabelExactMatch(n),
            "f1": ClasswiseWrapper(MultilabelF1Score(n, average=None), names, prefix="f1_"),
        },
        compute_groups=False,
    )
