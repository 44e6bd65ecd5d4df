"""The metric collection gives the same numbers as standalone torchmetrics, epoch after epoch."""

from __future__ import annotations

import pytest
import torch
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score, MulticlassRecall

from sftlab.tasks.metrics import classification_metrics, confusion_matrix


def test_collection_matches_standalone_metrics_across_resets():
    labels = ["negative", "neutral", "positive"]
    collection = classification_metrics(labels).clone(prefix="val/")
    gen = torch.Generator().manual_seed(0)
    for _epoch in range(3):
        preds = torch.randint(0, 3, (50,), generator=gen)
        target = torch.randint(0, 3, (50,), generator=gen)
        for chunk in range(0, 50, 10):  # several batches per epoch
            collection.update(preds[chunk : chunk + 10], target[chunk : chunk + 10])
        values = collection.compute()
        collection.reset()
        recall = MulticlassRecall(3, average=None)(preds, target)
        f1 = MulticlassF1Score(3, average=None)(preds, target)
        assert values["val/acc"] == pytest.approx(
            float(MulticlassAccuracy(3, average="micro")(preds, target))
        )
        assert values["val/f1_macro"] == pytest.approx(float(f1.mean()))
        for i, name in enumerate(labels):
            assert values[f"val/recall_{name}"] == pytest.approx(float(recall[i]))
            assert values[f"val/f1_{name}"] == pytest.approx(float(f1[i]))


def test_label_names_become_safe_keys_and_confusion_rows_are_true_labels():
    values = classification_metrics(["very good", "bad/awful"]).clone(prefix="test/")
    values.update(torch.tensor([0, 0, 1]), torch.tensor([0, 1, 1]))
    keys = set(values.compute())
    assert {"test/recall_very_good", "test/recall_bad_awful"} <= keys
    cm = confusion_matrix(["a", "b"])
    cm.update(torch.tensor([0, 0, 1]), torch.tensor([0, 1, 1]))
    assert cm.compute().tolist() == [[1, 0], [1, 1]]


def test_the_metric_catalogue_names_what_each_task_logs():
    """config/metric_names.py (read before torch) and the task modules' metrics agree."""
    from sftlab.config.metric_names import PER_CLASS, TASK_METRICS
    from sftlab.tasks.metrics import (
        classification_metrics,
        multilabel_metrics,
        regression_metrics,
    )

    logged = {
        "classification": set(classification_metrics(["a", "b"])) - set(PER_CLASS) | {"loss"},
        "multilabel": set(multilabel_metrics(["a", "b"])) - {"f1"} | {"loss", "threshold"},
        "regression": set(regression_metrics()) | {"loss"},
    }
    for task, names in logged.items():
        assert names == set(TASK_METRICS[task]), task
