"""data.task=regression: targets, loss, metrics, the packaged VADER set, export and predict."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf
from scipy.stats import pearsonr, spearmanr
from transformers import pipeline

from sftlab import train
from sftlab.data.datamodule import DataConfig, TextDataModule
from sftlab.data.packaged import load_vader_sentences
from sftlab.deploy.predict import predict
from sftlab.models.backbone import load_tokenizer
from sftlab.tasks.metrics import regression_metrics
from sftlab.utils.errors import SftlabError
from tests.conftest import ASSETS, TINY, compose_cfg

REG_CSV = ASSETS / "tiny_regression.csv"
REG = [*TINY, f"data.path={REG_CSV}", "data.label_column=score", "data.task=regression"]


def test_vader_sentences_reads_all_four_files():
    df = load_vader_sentences()
    assert len(df) == 23703  # 4200 tweets + 10605 movie + 3708 Amazon + 5190 NYT sentences
    assert df["domain"].value_counts()["movieReviewSnippets"] == 10605
    assert df["sentiment"].between(-4, 4).all() and df["text"].str.len().min() > 0
    # the texts keep their unbalanced quotes (not CSV quoting)
    assert df["text"].str.contains("''Conan''", regex=False).any()


def test_regression_datamodule_floats_and_plain_split(tmp_path):
    tok = load_tokenizer(compose_cfg(REG).model)
    cfg = DataConfig(
        source="files", path=str(REG_CSV), label_column="score", task="regression", cache_dir=None
    )
    dm = TextDataModule(cfg, tok, seed=1)
    dm.setup()
    assert dm.label_names == ["score"]
    assert sum(len(f) for f in dm.frames.values()) == 80
    labels = dm.datasets["train"].labels
    assert all(isinstance(v, float) for v in labels) and len(set(labels)) > 10
    batch = dm.collate([dm.datasets["train"][i] for i in range(4)])
    assert batch["labels"].dtype == torch.float32 and batch["labels"].shape == (4,)


def test_regression_non_numeric_target_names_the_row(tmp_path):
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"text": ["a b", "c d", "e f"], "score": ["1.5", "high", "0"]}).to_csv(
        bad, index=False
    )
    tok = load_tokenizer(compose_cfg(REG).model)
    cfg = DataConfig(
        source="files", path=str(bad), label_column="score", task="regression", cache_dir=None
    )
    with pytest.raises(SftlabError, match=r"row 3, column 'score' has 'high', not a number"):
        TextDataModule(cfg, tok).load_frames()


def test_unknown_task_is_one_line():
    with pytest.raises(SftlabError, match="unknown data.task 'ranking'"):
        DataConfig(source="files", path="x.csv", task="ranking")


def test_regression_metrics_match_scipy():
    rng = np.random.default_rng(0)
    y = rng.normal(size=50)
    p = y + rng.normal(scale=0.5, size=50)
    m = regression_metrics()
    m.update(torch.tensor(p, dtype=torch.float32), torch.tensor(y, dtype=torch.float32))
    out = {k: float(v) for k, v in m.compute().items()}
    assert out["mse"] == pytest.approx(np.mean((p - y) ** 2), rel=1e-4)
    assert out["mae"] == pytest.approx(np.mean(np.abs(p - y)), rel=1e-4)
    assert out["pearson"] == pytest.approx(pearsonr(p, y)[0], rel=1e-4)
    assert out["spearman"] == pytest.approx(spearmanr(p, y)[0], rel=1e-4)


@pytest.fixture(scope="module")
def regression_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("reg-run")
    cfg = compose_cfg(
        [*REG, "trainer.max_epochs=2", "data.batch_size=16", "loss.regression=huber"],
        output_dir=out,
    )
    return cfg, out, train(cfg)


def test_regression_run_monitors_pearson_and_exports_one_output(regression_run):
    cfg, out, metrics = regression_run
    assert {"test/mse", "test/mae", "test/pearson", "test/spearman", "best_val/pearson"} <= set(
        metrics
    )
    assert "test/acc" not in metrics
    config = json.loads((out / "model" / "config.json").read_text())
    assert config["problem_type"] == "regression" and config["id2label"] == {"0": "score"}
    assert json.loads((out / "model" / "sftlab.json").read_text())["task"] == "regression"


def test_exported_regression_model_reproduces_test_mse_with_pipeline(regression_run):
    cfg, out, metrics = regression_run
    reg = pipeline(
        "text-classification", model=str(out / "model"), function_to_apply="none", device="cpu"
    )
    test = pd.read_csv(out / "data" / "test.csv")
    values = np.array(
        [r["score"] for r in reg(test["text"].tolist(), truncation=True, max_length=128)]
    )
    assert np.mean((values - test["score"].to_numpy()) ** 2) == pytest.approx(
        metrics["test/mse"], rel=1e-4
    )


def test_predict_writes_pred_value(regression_run, tmp_path):
    cfg, out, metrics = regression_run
    written = predict(
        OmegaConf.create(
            {
                "run": str(out),
                "input": str(out / "data" / "test.csv"),
                "output": str(tmp_path / "p.csv"),
                "progress": False,
            }
        )
    )
    preds = pd.read_csv(written)
    assert list(preds.columns) == ["text", "score", "pred_value"]
    mae = np.mean(np.abs(preds["pred_value"] - preds["score"]))
    assert mae == pytest.approx(metrics["test/mae"], rel=1e-4)


def test_class_weights_refused_for_regression(tmp_path):
    cfg = compose_cfg([*REG, "loss.class_weights=balanced"], output_dir=tmp_path)
    with pytest.raises(SftlabError, match="loss.class_weights is for single-label"):
        train(cfg)


def test_experiment_vader_regression_composes():
    cfg = compose_cfg(["experiment=vader_regression"])
    assert cfg.data.source == "vader_sentences" and cfg.data.task == "regression"
    assert cfg.monitor == "val/pearson"


def test_serve_answers_a_regression_model_with_its_values(regression_run):
    from fastapi.testclient import TestClient

    from sftlab.deploy.serve import create_app
    from sftlab.inference.predictor import load_predictor

    cfg, out, metrics = regression_run
    test = pd.read_csv(out / "data" / "test.csv")
    texts = test["text"].head(5).tolist()
    client = TestClient(create_app(load_predictor(out, device="cpu"), batch_size=2))
    resp = client.post("/predict", json={"texts": texts})
    assert resp.status_code == 200
    served = [p["pred_value"] for p in resp.json()["predictions"]]
    reg = pipeline("text-classification", model=str(out / "model"), function_to_apply="none")
    expected = [r["score"] for r in reg(texts, truncation=True, max_length=128)]
    assert served == pytest.approx(expected, abs=1e-4)
    assert client.get("/health").json()["task"] == "regression"
