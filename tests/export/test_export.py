"""Export: the model card in model/, and ONNX logits that match PyTorch (checked with onnxruntime)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from sftlab.export.__main__ import main as export_main
from tests.helpers.tiny_run import copy_run, trained_run

ort = pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return trained_run(tmp_path_factory)


def test_model_card_from_config_and_metrics(run):
    card = (run / "model" / "README.md").read_text()
    metrics = json.loads((run / "metrics.json").read_text())
    assert card.startswith("---\n") and "\nlibrary_name: transformers\n" in card
    assert "base model: none: a randomly initialised model (model_type=bert, hidden_size=32" in card
    assert "strategy: full (head_lr_scale=10);" in card
    assert "labels (id: name): 0: negative, 1: neutral, 2: positive" in card
    assert "source: `" in card and "tiny_sentiment.csv`" in card
    assert "| learning rate | 0.003 |" in card and "| batch size | 8 |" in card
    for key in ("acc", "f1_macro", "recall_neutral"):
        assert f"| {key} | {metrics['test/' + key]:.4f} | {metrics['val/' + key]:.4f} |" in card
    assert (
        "| negative | " + " | ".join(str(v) for v in metrics["test/confusion_matrix"][0]) + " |"
        in card
    )
    assert 'pipeline("text-classification", model=' in card


@pytest.fixture(scope="module")
def onnx_dir(run, tmp_path_factory):
    own = copy_run(run, tmp_path_factory.mktemp("onnx") / "run")
    export_main([f"run={own}", "format=onnx"])
    return own / "onnx"


def test_onnx_logits_match_pytorch_on_the_test_split(run, onnx_dir):
    assert {"model.onnx", "tokenizer.json", "config.json", "export.json"} <= {
        p.name for p in onnx_dir.iterdir()
    }
    report = json.loads((onnx_dir / "export.json").read_text())
    assert report["max_abs_logit_diff"] <= 1e-4 and report["rows"] == 9

    # An independent check: onnxruntime vs the exported PyTorch model, batch sizes 1 and 9.
    texts = pd.read_csv(run / "data" / "test.csv")["text"].tolist()
    tokenizer = AutoTokenizer.from_pretrained(onnx_dir)
    model = AutoModelForSequenceClassification.from_pretrained(run / "model").eval()
    session = ort.InferenceSession(str(onnx_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    assert names == ["input_ids", "token_type_ids", "attention_mask"]
    for batch in (texts, texts[:1]):
        enc = tokenizer(batch, padding=True, truncation=True, max_length=128, return_tensors="np")
        got = session.run(["logits"], {n: enc[n].astype(np.int64) for n in names})[0]
        with torch.no_grad():
            want = model(**{k: torch.from_numpy(v) for k, v in enc.items()}).logits.numpy()
        assert got.shape == (len(batch), 3)
        assert np.abs(got - want).max() <= 1e-4
        assert np.abs(want).max() > 1e-3  # the comparison is not between two zero tensors


def test_export_cli_errors_are_one_line(tmp_path, capsys):
    for argv, message in [
        (["format=onnx"], "missing run=<run dir>"),
        ([f"run={tmp_path}", "format=tflite"], "unknown format=tflite"),
        ([f"run={tmp_path}", "colour=red"], "bad argument"),
        ([f"run={tmp_path / 'nope'}"], "not found"),
        ([f"run={tmp_path}", "format=hf", "quantize=int8"], "quantize=int8 applies to format=onnx"),
    ]:
        with pytest.raises(SystemExit) as exit_info:
            export_main(argv)
        assert exit_info.value.code == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and message in err and "\n" not in err
