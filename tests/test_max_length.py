"""data.max_length=auto: the length that keeps 95% of the training texts whole, capped."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sftlab.data.config import DataConfig
from sftlab.data.datamodule import TextClassificationDataModule
from sftlab.errors import SftlabError
from sftlab.models.backbone import load_tokenizer
from tests.conftest import compose_cfg


def _datamodule(path, **data) -> TextClassificationDataModule:
    cfg = compose_cfg(["model=tiny_bert", "data=files", f"data.path={path}"])
    values = {**dict(cfg.data), "cache_dir": None, **data}
    dm = TextClassificationDataModule(DataConfig.from_dict(values), load_tokenizer(cfg.model))
    dm.setup("fit")
    return dm


def _long_csv(tmp_path, n: int = 200):
    rng = np.random.default_rng(0)
    words = ["good", "bad", "flight", "delay", "crew", "seat", "bag", "late"]
    lengths = rng.integers(5, 60, n)
    lengths[:4] = 900  # four very long documents (2%)
    texts = [" ".join(rng.choice(words, k)) for k in lengths]
    path = tmp_path / "docs.csv"
    pd.DataFrame({"text": texts, "label": ["a", "b"] * (n // 2)}).to_csv(path, index=False)
    return path


def test_auto_covers_95_percent_of_training_texts(tmp_path):
    dm = _datamodule(_long_csv(tmp_path), max_length="auto")
    chosen = dm.config.max_length
    assert isinstance(chosen, int) and chosen % 8 == 0
    lengths = np.array(dm.datasets["train"].lengths)
    assert lengths.max() == chosen  # the longest are truncated to it
    assert (lengths < chosen).mean() >= 0.9
    assert chosen < 80  # the 2% of 900-word documents do not set the length


def test_auto_is_capped_at_the_model_limit(tmp_path):
    path = tmp_path / "long.csv"
    texts = [f"{i} " + "word " * 2000 for i in range(20)]
    pd.DataFrame({"text": texts, "label": ["a", "b"] * 10}).to_csv(path, index=False)
    dm = _datamodule(path, max_length="auto")
    assert dm.config.max_length == 512


def test_files_default_to_auto_and_runs_record_the_number(tiny_cfg):
    import json

    from sftlab.train import train

    cfg = tiny_cfg("trainer.fast_dev_run=true")
    assert cfg.data.max_length == "auto"
    train(cfg)
    out = Path(cfg.output_dir)
    saved = json.loads((out / "model" / "sftlab.json").read_text())
    assert isinstance(saved["max_length"], int)
    assert f"max_length: {saved['max_length']}" in (out / "config.yaml").read_text()


@pytest.mark.parametrize("bad", ["big", 1, True])
def test_bad_max_length_is_one_clear_error(bad):
    with pytest.raises(
        SftlabError, match="data.max_length must be a number of tokens >= 2 or 'auto'"
    ):
        DataConfig(source="files", max_length=bad)


def test_generation_refuses_auto():
    with pytest.raises(SftlabError, match="max_length=auto is for classification"):
        DataConfig(source="files", task="generation", max_length="auto")
