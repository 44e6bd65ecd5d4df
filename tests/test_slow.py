"""Real fine-tunes of the packaged MiniLM (marked slow: `make test-slow`)."""

from __future__ import annotations

import pytest

from sftlab import train
from sftlab.data.sources import load_airline_sentiment
from tests.conftest import compose_cfg


@pytest.mark.slow
def test_minilm_few_hundred_airline_tweets_beats_majority(tmp_path):
    df = load_airline_sentiment()
    sample = df.groupby("sentiment", group_keys=False).sample(frac=600 / len(df), random_state=0)
    path = tmp_path / "airline600.csv"
    sample.to_csv(path, index=False)
    cfg = compose_cfg(
        [
            "data=files",
            f"data.path={path}",
            "data.label_column=sentiment",
            "data.split=[0.6,0.2,0.2]",
            "trainer=cpu",
            "trainer.max_epochs=5",  # 360 tweets: 12 steps an epoch
            "strategy.lr=2e-4",  # at 3 epochs and 1e-4 the [CLS] head stayed at the majority class
            "trainer.enable_progress_bar=false",
        ],
        output_dir=tmp_path / "run",
    )
    metrics = train(cfg)
    majority = sample["sentiment"].value_counts(normalize=True).max()
    # Measured 0.808 / 0.720 (seed 42) and 0.667 / 0.579 (seed 1): 120 test tweets are noisy.
    assert metrics["test/acc"] > majority
    assert metrics["test/f1_macro"] > 0.5  # the majority class alone scores ~0.26
