"""model.pooling=mean|cls runs load everywhere without a remote-code prompt: predict.py, serve.py,
the ONNX export, and pipeline(..., trust_remote_code=True)."""

from __future__ import annotations

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from omegaconf import OmegaConf
from transformers import pipeline

from sftlab import train
from sftlab.deploy.predict import predict
from sftlab.deploy.serve import create_app
from sftlab.inference.predictor import load_predictor
from tests.conftest import TINY, compose_cfg


@pytest.fixture(scope="module", params=["mean", "cls"])
def pooled_run(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(f"pooled-{request.param}") / "run"
    cfg = compose_cfg(
        [
            *TINY,
            "strategy=head_only",
            f"model.pooling={request.param}",
            "trainer.max_epochs=2",
            "data.batch_size=8",
        ],
        output_dir=out,
    )
    return out, train(cfg)


def _test_rows(run) -> pd.DataFrame:
    return pd.read_csv(run / "data" / "test.csv", keep_default_na=False)


def test_predict_py(pooled_run, tmp_path):
    run, metrics = pooled_run
    rows = _test_rows(run)
    rows.to_csv(tmp_path / "in.csv", index=False)
    out = predict(
        OmegaConf.create(
            {
                "run": str(run),
                "input": str(tmp_path / "in.csv"),
                "output": None,
                "text_column": None,
                "batch_size": 4,
                "device": "cpu",
            }
        )
    )
    preds = pd.read_csv(out)
    assert (preds["pred_label"] == rows["label"]).mean() == pytest.approx(
        metrics["test/acc"], abs=1e-6
    )


def test_serve_py(pooled_run):
    run, _ = pooled_run
    client = TestClient(create_app(load_predictor(run, device="cpu"), batch_size=2))
    resp = client.post("/predict", json={"texts": ["the flight was late", "great crew"]})
    assert resp.status_code == 200, resp.text
    assert len(resp.json()["predictions"]) == 2


def test_onnx_export(pooled_run, tmp_path):
    pytest.importorskip("onnxruntime")
    from sftlab.export.onnx import export_onnx

    run, _ = pooled_run
    target = export_onnx(run, tmp_path / "onnx")
    assert (target / "model.onnx").is_file()


def test_pipeline_with_trust_remote_code(pooled_run):
    run, metrics = pooled_run
    rows = _test_rows(run)
    clf = pipeline(
        "text-classification", model=str(run / "model"), trust_remote_code=True, device="cpu"
    )
    preds = [p["label"] for p in clf(rows["text"].tolist(), truncation=True, max_length=128)]
    assert (rows["label"] == preds).mean() == pytest.approx(metrics["test/acc"], abs=1e-6)
