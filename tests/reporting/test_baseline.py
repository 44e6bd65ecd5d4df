"""The linear baseline every classification run shows beside its model: its numbers are
scikit-learn's own, and a model below it is called out in one line."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import accuracy_score, f1_score
from sklearn.svm import LinearSVC

from sftlab.reporting.baseline import analyzer_for, linear_baseline, shortfall
from sftlab.reporting.report import baseline_lines

WORDS = {
    "sport": "match goal team coach league score season player win",
    "money": "bank market stock price rate profit shares trade fund",
    "food": "recipe bake flour sugar oven taste dinner salt cook",
}


def _frames(rows: int = 120, seed: int = 0) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    labels = sorted(WORDS)
    texts, ids = [], []
    for i in range(rows):
        label = i % 3
        own = WORDS[labels[label]].split()
        noise = [w for k, v in WORDS.items() if k != labels[label] for w in v.split()]
        words = list(rng.choice(own, 4)) + list(rng.choice(noise, 3))  # noisy: not all correct
        texts.append(" ".join(rng.permutation(words)))
        ids.append(label)
    frame = pd.DataFrame({"text": texts, "label": [labels[i] for i in ids], "label_id": ids})
    return {"train": frame.iloc[: rows * 2 // 3], "test": frame.iloc[rows * 2 // 3 :]}


def test_baseline_matches_a_direct_scikit_learn_pipeline():
    frames = _frames()
    got = linear_baseline(frames, 3)
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2)
    x = vectorizer.fit_transform(frames["train"]["text"])
    predicted = (
        LinearSVC(C=1.0)
        .fit(x, frames["train"]["label_id"])
        .predict(vectorizer.transform(frames["test"]["text"]))
    )
    truth = frames["test"]["label_id"]
    assert got["baseline/acc"] == pytest.approx(accuracy_score(truth, predicted))
    assert got["baseline/f1_macro"] == pytest.approx(f1_score(truth, predicted, average="macro"))
    assert 0.5 < got["baseline/acc"] < 1.0  # learned something, not a constant
    assert got["baseline/seconds"] >= 0


def test_no_baseline_without_a_test_split_or_a_second_label():
    frames = _frames()
    assert linear_baseline({"train": frames["train"]}, 3) == {}
    one_label = frames["train"].assign(label_id=0)
    assert linear_baseline({"train": one_label, "test": frames["test"]}, 3) == {}


def test_unspaced_scripts_count_character_ngrams():
    assert analyzer_for(["这个产品质量很好，我非常喜欢。", "物流太慢了，包装也破了。"]) == "char_wb"
    assert analyzer_for(["the product is good", "slow delivery and a broken box"]) == "word"
    frames = _frames()
    chinese = {
        name: frame.assign(
            text=frame["label"].map({"sport": "比赛进球", "money": "银行股票", "food": "面粉烤箱"})
            + frame["text"].str.len().astype(str)
        )
        for name, frame in frames.items()
    }
    assert linear_baseline(chinese, 3)["baseline/acc"] == 1.0


def test_a_model_below_the_baseline_is_called_out():
    metrics = {
        "test/acc": 0.84,
        "test/f1_macro": 0.19,
        "baseline/acc": 0.94,
        "baseline/f1_macro": 0.66,
    }
    warning = shortfall(metrics)
    assert "below the TF-IDF + LinearSVC baseline" in warning
    assert "macro-F1 0.1900 < 0.6600" in warning and "accuracy 0.8400 < 0.9400" in warning
    assert "\n" not in warning
    lines = "\n".join(baseline_lines({**metrics, "baseline/seconds": 2.0}))
    assert "| TF-IDF + LinearSVC (2.0 s) | 0.9400 | 0.6600 |" in lines and "**Warning:**" in lines
    above = {**metrics, "test/acc": 0.95, "test/f1_macro": 0.70}
    assert shortfall(above) is None
    assert "Warning" not in "\n".join(baseline_lines(above))
    assert baseline_lines({"test/acc": 0.9}) == []
