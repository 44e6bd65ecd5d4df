"""End-to-end runs with a tiny random BERT: the run dir holds what users rely on."""

from __future__ import annotations

import json
import subprocess

import pytest
from transformers import pipeline

from sftlab import train
from sftlab.data.datamodule import DataConfig, TextDataModule
from sftlab.models.backbone import load_tokenizer
from tests.conftest import ROOT, TINY_CSV
from tests.helpers.cli import train_cli


def test_fast_dev_run(tiny_cfg):
    metrics = train(tiny_cfg("trainer.fast_dev_run=true"))
    assert 0.0 <= metrics["test/acc"] <= 1.0
    assert {"test/f1_macro", "test/recall_neutral", "test/f1_positive"} <= set(metrics)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A real (short) tiny-BERT run: 3 epochs on 72 rows."""
    from tests.conftest import TINY, compose_cfg

    out = tmp_path_factory.mktemp("run")
    cfg = compose_cfg(
        [*TINY, "trainer.max_epochs=3", "data.batch_size=8", "strategy.lr=1e-3"], output_dir=out
    )
    return cfg, out, train(cfg)


def test_run_dir_contents(finished_run):
    cfg, out, metrics = finished_run
    assert (out / "config.yaml").read_text().count("${") == 0  # resolved
    assert (out / "checkpoints" / "best.ckpt").exists()
    saved = json.loads((out / "metrics.json").read_text())
    cm = saved["test/confusion_matrix"]
    assert len(cm) == 3 and sum(map(sum, cm)) == 9  # 9 test rows
    assert saved["test/acc"] == pytest.approx(metrics["test/acc"])
    assert saved["test/acc"] == pytest.approx(sum(cm[i][i] for i in range(3)) / 9)
    assert (out / "csv" / "metrics.csv").exists()


def test_exported_model_loads_with_pipeline_and_reproduces_test_accuracy(finished_run):
    cfg, out, metrics = finished_run
    clf = pipeline("text-classification", model=str(out / "model"), device="cpu")
    assert clf.model.config.id2label == {0: "negative", 1: "neutral", 2: "positive"}
    tokenizer = load_tokenizer(cfg.model)
    dm = TextDataModule(DataConfig.from_dict(dict(cfg.data)), tokenizer, seed=cfg.seed)
    test = dm.load_frames()["test"]
    preds = [
        p["label"]
        for p in clf(test["text"].tolist(), truncation=True, max_length=cfg.data.max_length)
    ]
    accuracy = (test["label"] == preds).mean()
    assert accuracy == pytest.approx(metrics["test/acc"], abs=1e-6)


def run_cli(*args: str, cwd=ROOT) -> subprocess.CompletedProcess:
    return train_cli(*args, cwd=cwd)


def test_cli_offline_hub_model_fails_fast_in_one_line(tmp_path):
    run_dir = tmp_path / "run"
    result = run_cli("model=bert", f"hydra.run.dir={run_dir}")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: model.name_or_path='bert-base-uncased'")
    assert "Traceback" not in result.stderr
    assert not run_dir.exists()  # no empty run dir left behind


def test_cli_local_folder_model(finished_run, tmp_path):
    """model.name_or_path accepts any local Hugging Face folder (here: the exported one)."""
    _, out, _ = finished_run
    result = run_cli(
        "model=tiny_bert",
        f"model.name_or_path={out / 'model'}",
        "model.config=null",
        "model.tokenizer=null",
        "data=files",
        f"data.path={TINY_CSV}",
        "trainer=cpu",
        "trainer.precision=32",
        "trainer.fast_dev_run=true",
        f"hydra.run.dir={tmp_path / 'run2'}",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "run2" / "model" / "config.json").exists()
