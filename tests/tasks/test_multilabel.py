"""data.task=multilabel: label sets from lists or delimited strings, BCE, thresholds, F1, predict."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf
from sklearn.metrics import f1_score
from sklearn.preprocessing import MultiLabelBinarizer

from sftlab import train
from sftlab.data.datamodule import DataConfig, TextDataModule
from sftlab.deploy.predict import predict
from sftlab.models.backbone import load_tokenizer
from sftlab.tasks.metrics import multilabel_metrics
from sftlab.tasks.multilabel import best_threshold
from sftlab.utils.errors import SftlabError
from tests.conftest import ASSETS, TINY, compose_cfg

ML_CSV = ASSETS / "tiny_multilabel.csv"
ML = [
    *TINY,
    f"data.path={ML_CSV}",
    "data.label_column=topics",
    "data.task=multilabel",
    "data.label_delimiter=|",
]


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(compose_cfg(ML).model)


def _dm(tokenizer, path, **kw) -> TextDataModule:
    cfg = DataConfig(source="files", path=str(path), task="multilabel", cache_dir=None, **kw)
    return TextDataModule(cfg, tokenizer, seed=3)


def test_delimited_strings_and_json_lists_give_the_same_multi_hot(tokenizer, tmp_path):
    texts = [f"text number {i}" for i in range(12)]
    sets = [["b", "a"], ["c"], ["a", "c"], ["b"]] * 3
    csv = tmp_path / "ml.csv"
    pd.DataFrame({"text": texts, "label": [" | ".join(s) for s in sets]}).to_csv(csv, index=False)
    jsonl = tmp_path / "ml.jsonl"
    pd.DataFrame({"text": texts, "label": sets}).to_json(jsonl, orient="records", lines=True)
    a = _dm(tokenizer, csv, label_delimiter="|", split=(1.0, 0.0, 0.0))
    b = _dm(tokenizer, jsonl, split=(1.0, 0.0, 0.0))
    a.setup(), b.setup()
    assert a.label_names == b.label_names == ["a", "b", "c"]
    assert a.datasets["train"].labels == b.datasets["train"].labels
    row = a.frames["train"].set_index("text").loc["text number 0"]
    assert row["label"] == "a|b" and row["label_id"] == [1.0, 1.0, 0.0]
    batch = a.collate([a.datasets["train"][i] for i in range(3)])
    assert batch["labels"].dtype == torch.float32 and batch["labels"].shape == (3, 3)


def test_label_outside_data_labels_names_it(tokenizer):
    dm = _dm(
        tokenizer, ML_CSV, label_column="topics", label_delimiter="|", labels=["food", "service"]
    )
    with pytest.raises(SftlabError, match="has label 'price' not in data.labels"):
        dm.load_frames()


def test_bad_threshold_is_one_line():
    with pytest.raises(SftlabError, match="data.threshold must be a probability"):
        DataConfig(source="files", path="x.csv", task="multilabel", threshold=1.5)


def test_best_threshold_maximises_micro_f1():
    probs = torch.tensor([[0.9, 0.3], [0.35, 0.8], [0.2, 0.1], [0.32, 0.6]])
    targets = torch.tensor([[1, 1], [1, 1], [0, 0], [0, 1]])
    t = best_threshold(probs, targets)
    assert 0.2 < t <= 0.3  # takes 0.3 and 0.32 and 0.35 as positives, not 0.2
    f1 = lambda th: f1_score(targets.numpy(), (probs >= th).int().numpy(), average="micro")  # noqa: E731
    assert f1(t) == max(f1(x) for x in np.arange(0.05, 0.96, 0.05))


def test_multilabel_metrics_match_sklearn():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=(40, 3))
    p = np.where(rng.random((40, 3)) < 0.8, y, 1 - y)
    m = multilabel_metrics(["a", "b", "c"])
    m.update(torch.tensor(p), torch.tensor(y))
    out = {k: float(v) for k, v in m.compute().items()}
    assert out["f1_micro"] == pytest.approx(f1_score(y, p, average="micro"))
    assert out["f1_macro"] == pytest.approx(f1_score(y, p, average="macro"))
    per = f1_score(y, p, average=None)
    assert [out["f1_a"], out["f1_b"], out["f1_c"]] == pytest.approx(list(per))


@pytest.fixture(scope="module")
def multilabel_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ml-run")
    overrides = [
        *ML,
        "data.threshold=tune",
        "trainer.max_epochs=6",
        "data.batch_size=8",
        "strategy.lr=3e-3",
        "strategy.head_lr_scale=1",  # the lr was tuned for this random tiny body with one lr
    ]
    cfg = compose_cfg(overrides, output_dir=out)
    return cfg, out, train(cfg)


def test_multilabel_run_learns_and_exports(multilabel_run):
    cfg, out, metrics = multilabel_run
    assert {
        "test/f1_micro",
        "test/f1_macro",
        "test/f1_food",
        "test/f1_price",
        "test/f1_service",
    } <= set(metrics)
    assert "best_val/f1_macro" in metrics  # the default monitor is a multi-label metric too
    assert 0.05 <= metrics["test/threshold"] <= 0.95
    # every row of this file has at least one topic: predicting all three already gives ~0.8 micro F1
    assert metrics["test/f1_micro"] > 0.7
    config = json.loads((out / "model" / "config.json").read_text())
    assert config["problem_type"] == "multi_label_classification"
    meta = json.loads((out / "model" / "sftlab.json").read_text())
    assert meta["task"] == "multilabel" and meta["threshold"] == pytest.approx(
        metrics["test/threshold"], abs=1e-4
    )


def test_predict_writes_label_sets_that_reproduce_test_f1(multilabel_run, tmp_path):
    cfg, out, metrics = multilabel_run
    args = {
        "run": str(out),
        "input": str(out / "data" / "test.csv"),
        "output": str(tmp_path / "p.csv"),
    }
    preds = pd.read_csv(
        predict(OmegaConf.create({**args, "progress": False})), keep_default_na=False
    )
    assert list(preds.columns) == [
        "text",
        "topics",
        "pred_labels",
        "prob_food",
        "prob_price",
        "prob_service",
    ]
    mlb = MultiLabelBinarizer(classes=["food", "price", "service"])
    y = mlb.fit_transform(preds["topics"].str.split("|"))
    p = mlb.transform([s.split("|") if s else [] for s in preds["pred_labels"]])
    assert f1_score(y, p, average="micro") == pytest.approx(metrics["test/f1_micro"], abs=1e-6)
