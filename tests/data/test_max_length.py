"""data.max_length=auto: the length that keeps 95% of the training texts whole, capped."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sftlab.config.data import DataConfig
from sftlab.data.datamodule import TextDataModule, model_length_limit
from sftlab.models.backbone import load_tokenizer
from sftlab.utils.errors import SftlabError
from tests.conftest import compose_cfg


def _datamodule(path, **data) -> TextDataModule:
    cfg = compose_cfg(["model=tiny_bert", "data=files", f"data.path={path}"])
    values = {**dict(cfg.data), "cache_dir": None, **data}
    dm = TextDataModule(DataConfig.from_dict(values), load_tokenizer(cfg.model))
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
    # tiny_bert uses the packaged MiniLM tokenizer: 512 positions, trained (as a
    # sentence-transformers model) on 256 tokens
    assert _datamodule(path, max_length="auto").config.max_length == 256


def test_model_length_limit_reads_the_sentence_transformers_config(tmp_path):
    from types import SimpleNamespace

    tok = SimpleNamespace(model_max_length=int(1e30), name_or_path=str(tmp_path))
    assert model_length_limit(tok) == 512  # an unset limit: the cap
    (tmp_path / "sentence_bert_config.json").write_text('{"max_seq_length": 128}')
    assert model_length_limit(tok) == 128
    tok.model_max_length = 64
    assert model_length_limit(tok) == 64


def test_runs_record_the_number_auto_resolved_to(tiny_cfg):
    import json

    from sftlab import train

    cfg = tiny_cfg("trainer.fast_dev_run=true", "data.max_length=auto")
    train(cfg)
    out = Path(cfg.output_dir)
    saved = json.loads((out / "model" / "sftlab.json").read_text())
    assert isinstance(saved["max_length"], int) and saved["max_length"] % 8 == 0
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
