"""Fast batch prediction: length-sorted batches padded per batch, the run's precision, and the
onnxruntime backend (fp32 and int8) in predict.py and serve.py."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from fastapi.testclient import TestClient
from omegaconf import OmegaConf

from sftlab.deploy.loading import load
from sftlab.deploy.predict import predict
from sftlab.deploy.serve import create_app
from sftlab.inference import backends
from sftlab.inference.backends import check_backend, predict_dtype
from sftlab.inference.frames import predict_frame
from sftlab.inference.predictor import Predictor, batched, load_predictor
from sftlab.utils.errors import SftlabError
from tests.helpers.tiny_run import copy_run, trained_run

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return trained_run(tmp_path_factory)


@pytest.fixture(scope="module")
def onnx_run(run, tmp_path_factory):
    """A copy of the run, predicted once with backend=onnx quantize=int8 (exports both files)."""
    own = copy_run(run, tmp_path_factory.mktemp("onnx") / "run")
    cfg = OmegaConf.create(
        {"run": str(own), "input": str(own / "data" / "test.csv"), "backend": "onnx",
         "quantize": "int8", "progress": False, "output": str(own / "int8.preds.csv")}
    )  # fmt: skip
    predict(cfg)
    return own


def test_each_batch_is_padded_to_its_own_longest_text_longest_first(run):
    predictor = load_predictor(run, "cpu")
    texts = ["a", "a much longer text with many more words in it than the others", "ok then", "b"]
    widths = []

    def record(batch):
        widths.append(batch["input_ids"].shape[1])
        return np.zeros((batch["input_ids"].shape[0], len(predictor.labels)), dtype=np.float32)

    batched(predictor, texts, 2, record)
    lengths = sorted(
        (len(predictor.tokenizer(t)["input_ids"]) for t in texts), reverse=True
    )  # fmt: skip
    assert widths == [lengths[0], lengths[2]]  # no batch padded to the longest text overall


def test_outputs_come_back_in_the_order_of_the_texts(run):
    predictor = load_predictor(run, "cpu")
    texts = pd.read_csv(run / "data" / "test.csv")["text"].tolist()
    one_by_one = np.concatenate(
        [predict_frame(predictor, [t]).iloc[:, 1:].to_numpy() for t in texts]
    )
    together = predict_frame(predictor, texts, batch_size=4).iloc[:, 1:].to_numpy()
    assert np.abs(one_by_one - together).max() < 1e-5


def test_the_runs_precision_is_followed_only_where_it_is_fast(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(backends, "cpu_native_bf16", lambda: False)
    assert predict_dtype("bf16-mixed", cpu) is None  # ~20x slower than fp32 without native bf16
    monkeypatch.setattr(backends, "cpu_native_bf16", lambda: True)
    assert predict_dtype("bf16-mixed", cpu) is torch.bfloat16
    assert predict_dtype("32-true", cpu) is None
    assert predict_dtype("16-mixed", cpu) is None  # fp16 autocast only on CUDA
    assert predict_dtype(None, cpu) is None


def test_bad_backend_settings_fail_in_one_line():
    for args, message in [
        (("tensorrt", None), "unknown backend=tensorrt: use backend=torch or backend=onnx"),
        (("onnx", "int4"), "unknown quantize=int4"),
        (("torch", "int8"), "quantize=int8 runs on onnxruntime: add backend=onnx"),
    ]:
        with pytest.raises(SftlabError, match=message):
            check_backend(*args)


def test_onnx_backends_predict_what_pytorch_predicts(run, onnx_run):
    onnx = onnx_run / "onnx"
    assert (onnx / "model.onnx").is_file() and (onnx / "model.int8.onnx").is_file()
    report = json.loads((onnx / "export.json").read_text())
    # each backend's accuracy on the run's test split, next to PyTorch's
    assert set(report["accuracy"]) == {"torch", "onnx", "onnx int8"}
    metrics = json.loads((run / "metrics.json").read_text())
    assert report["accuracy"]["torch"] == pytest.approx(metrics["test/acc"], abs=1e-6)
    assert report["label_agreement"]["onnx"] == 1.0
    assert report["int8"]["max_abs_logit_diff"] > report["max_abs_logit_diff"]  # really int8

    test = pd.read_csv(onnx_run / "data" / "test.csv")
    torch_preds = predict_frame(load_predictor(run, "cpu"), test["text"].tolist())
    cfg = OmegaConf.create(
        {"run": str(onnx_run), "input": str(onnx_run / "data" / "test.csv"), "backend": "onnx",
         "progress": False, "output": str(onnx_run / "fp32.preds.csv")}
    )  # fmt: skip
    fp32 = pd.read_csv(predict(cfg))
    assert fp32["pred_label"].tolist() == torch_preds["pred_label"].tolist()
    probs = [c for c in fp32.columns if c.startswith("prob_")]
    assert np.abs(fp32[probs].to_numpy() - torch_preds[probs].to_numpy()).max() < 1e-4
    int8 = pd.read_csv(onnx_run / "int8.preds.csv")
    assert list(int8.columns) == list(fp32.columns)
    assert np.allclose(int8[probs].sum(axis=1), 1.0, atol=1e-4)


def test_the_export_is_reused_and_redone_when_the_model_changes(onnx_run):
    model_file = onnx_run / "onnx" / "model.onnx"
    cfg = OmegaConf.create({"run": str(onnx_run), "backend": "onnx", "device": "cpu"})
    before = model_file.stat().st_mtime_ns
    load(cfg)
    assert model_file.stat().st_mtime_ns == before  # exported once, then reused
    load(OmegaConf.create({"run": str(onnx_run / "model"), "backend": "onnx", "device": "cpu"}))
    assert not (onnx_run / "model" / "onnx").exists()  # a run's model folder uses the run's export
    assert model_file.stat().st_mtime_ns == before
    weights = onnx_run / "model" / "model.safetensors"
    weights.touch()  # model/ exported again after the ONNX file
    load(cfg)
    assert model_file.stat().st_mtime_ns > before


def test_serve_runs_the_onnx_backend(onnx_run):
    cfg = OmegaConf.create({"run": str(onnx_run), "backend": "onnx", "device": "cpu"})
    client = TestClient(create_app(load(cfg), batch_size=2))
    assert client.get("/health").json()["backend"] == "onnx"
    answer = client.post("/predict", json={"texts": ["great crew", "lost my bag"]}).json()
    assert [set(p) for p in answer["predictions"]] == [{"label", "probabilities"}] * 2


def test_generation_runs_refuse_the_onnx_backend(monkeypatch, tmp_path):
    generator = Predictor(None, None, [], "generation", "prompt", max_length=16, cleaning=[])
    monkeypatch.setattr("sftlab.deploy.loading.load_predictor", lambda run, device: generator)
    cfg = OmegaConf.create({"run": str(tmp_path), "backend": "onnx"})
    with pytest.raises(SftlabError, match="is a generation run; use backend=torch"):
        load(cfg)
