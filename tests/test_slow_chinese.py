"""The packaged multilingual encoder on the packaged Chinese reviews (slow: `make test-slow`)."""

from __future__ import annotations

import os
import subprocess
import sys

import pandas as pd
import pytest

from sftlab import train
from tests.conftest import ROOT, compose_cfg


@pytest.mark.slow
def test_e5_fine_tuned_on_a_few_hundred_reviews_beats_majority_and_predicts(tmp_path):
    out = tmp_path / "run"
    cfg = compose_cfg(
        [
            "model=multilingual_e5_small",
            "data=chinese_reviews",
            "data.train_size=400",
            "data.split=[0.94,0.03,0.03]",  # 522 validation and 522 test reviews
            "strategy=full",
            "trainer=cpu",
            "trainer.precision=32",
            "trainer.max_epochs=1",
            "trainer.enable_progress_bar=false",
        ],
        output_dir=out,
    )
    metrics = train(cfg)
    test = pd.read_csv(out / "data" / "test.csv")
    majority = test["label"].value_counts(normalize=True).max()  # ~0.52
    assert metrics["test/acc"] > majority + 0.1
    assert min(metrics["test/recall_negative"], metrics["test/recall_positive"]) > 0.5

    new = tmp_path / "新评论.csv"
    pd.DataFrame(
        {"text": ["质量非常好，物流也快，很满意！", "太差了，用了两天就坏了，不推荐。"]}
    ).to_csv(new, index=False)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    result = subprocess.run(
        [sys.executable, str(ROOT / "predict.py"), f"run={out}", f"input={new}", "progress=false"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    preds = pd.read_csv(tmp_path / "新评论.preds.csv", encoding="utf-8")
    assert preds["pred_label"].tolist() == ["positive", "negative"]
