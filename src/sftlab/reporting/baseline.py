"""The floor under every classification run: TF-IDF + a linear SVM (scikit-learn) trained on
the run's own training split and scored on its test split, in seconds. Its numbers sit beside
the fine-tuned model's in the console, ``metrics.json`` (``baseline/*``), ``report.md`` and
the model card, so a user always sees whether fine-tuning was worth it."""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

NAME = "TF-IDF + LinearSVC"


def analyzer_for(texts: list[str]) -> str:
    """``word`` when the texts separate words with spaces, else ``char_wb`` (Chinese, Japanese,
    Thai... are written without them): fewer than one space per 20 characters."""
    sample = texts[:2000]
    chars = sum(len(t) for t in sample)
    spaces = sum(t.count(" ") for t in sample)
    return "word" if chars == 0 or spaces * 20 >= chars else "char_wb"


def vectorizer(analyzer: str) -> Any:
    """Word unigrams and bigrams (character 1-3-grams for unspaced scripts), sublinear tf."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    if analyzer == "word":
        return TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2, dtype=np.float32)
    return TfidfVectorizer(
        analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True, min_df=2, dtype=np.float32
    )


def _texts(frame: pd.DataFrame) -> list[str]:
    if "text_pair" in frame:  # a pair: both texts count
        return (frame["text"] + " \n " + frame["text_pair"]).tolist()
    return frame["text"].tolist()


def linear_baseline(frames: dict[str, pd.DataFrame], n_labels: int) -> dict[str, float]:
    """``baseline/acc``, ``baseline/f1_macro``, ``baseline/f1_weighted`` and
    ``baseline/seconds`` of TF-IDF + LinearSVC (C=1, scikit-learn's defaults otherwise) fit on
    ``frames["train"]`` and scored on ``frames["test"]``. Macro-F1 averages over every label
    present in the test split or predicted, as the run's ``test/f1_macro`` does. Empty when
    there is no test split or the training split has a single label."""
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.svm import LinearSVC

    train, test = frames.get("train"), frames.get("test")
    if train is None or test is None or len(test) == 0 or train["label_id"].nunique() < 2:
        return {}
    started = time.perf_counter()
    train_texts = _texts(train)
    analyzer = analyzer_for(train_texts)
    features = vectorizer(analyzer)
    try:
        x_train = features.fit_transform(train_texts)
    except ValueError:  # min_df=2 left no term (a tiny training split): count every term once
        features.set_params(min_df=1)
        x_train = features.fit_transform(train_texts)
    classifier = LinearSVC(C=1.0).fit(x_train, train["label_id"].to_numpy())
    predicted = classifier.predict(features.transform(_texts(test)))
    del x_train
    truth = test["label_id"].to_numpy()
    labels = sorted(set(truth.tolist()) | set(predicted.tolist()))
    return {
        "baseline/acc": float(accuracy_score(truth, predicted)),
        "baseline/f1_macro": float(
            f1_score(truth, predicted, average="macro", labels=labels, zero_division=0)
        ),
        "baseline/f1_weighted": float(
            f1_score(truth, predicted, average="weighted", labels=labels, zero_division=0)
        ),
        "baseline/seconds": round(time.perf_counter() - started, 2),
    }


def describe(baseline: dict[str, float]) -> str:
    """One log line: the floor the fine-tuned model has to beat."""
    return (
        f"baseline: {NAME} on the same train/test split: test acc {baseline['baseline/acc']:.4f}, "
        f"macro-F1 {baseline['baseline/f1_macro']:.4f} ({baseline['baseline/seconds']:.1f} s); "
        f"the fine-tuned model is compared with it at the end (baseline=false skips it)"
    )


def shortfall(metrics: dict[str, Any]) -> str | None:
    """A one-line warning when the fine-tuned model scores below the baseline on test accuracy
    or macro-F1, else None."""
    below = [
        f"{name} {metrics[f'test/{key}']:.4f} < {metrics[f'baseline/{key}']:.4f}"
        for key, name in (("f1_macro", "macro-F1"), ("acc", "accuracy"))
        if f"test/{key}" in metrics
        and f"baseline/{key}" in metrics
        and metrics[f"test/{key}"] < metrics[f"baseline/{key}"]
    ]
    if not below:
        return None
    return (
        f"the fine-tuned model scores below the {NAME} baseline on the test split "
        f"({'; '.join(below)}): more epochs (trainer.max_epochs), loss.class_weights=balanced "
        f"for rare classes, or a larger data.max_length may close the gap; the baseline is "
        f"metrics.json's baseline/*"
    )
