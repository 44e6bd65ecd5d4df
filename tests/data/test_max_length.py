"""data.max_length=auto: the length that keeps 95% of the training texts whole, capped."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from transformers import BertConfig, RobertaConfig

from sftlab import train
from sftlab.config.data import DataConfig
from sftlab.data.datamodule import TextDataModule, model_length_limit
from sftlab.models.backbone import load_tokenizer, max_positions
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


@pytest.mark.parametrize("bad", ["big", 1, 7, True])
def test_bad_max_length_is_one_clear_error(bad):
    with pytest.raises(
        SftlabError, match="data.max_length must be a number of tokens >= 8 or 'auto'"
    ):
        DataConfig(source="files", max_length=bad)


def test_generation_refuses_auto():
    with pytest.raises(SftlabError, match="max_length=auto is for classification"):
        DataConfig(source="files", task="generation", max_length="auto")


# -- a number above the model's positions ------------------------------------------------------
def test_max_length_above_the_model_positions_is_cut_to_them(tiny_cfg, tmp_path, caplog):
    """It used to be accepted, then fail with an IndexError in the position embeddings in the
    middle of training (texts over 512 tokens); now it is lowered, with one warning line."""
    path = _long_csv(tmp_path, n=40)
    cfg = tiny_cfg(f"data.path={path}", "data.max_length=100000", "trainer.fast_dev_run=true")
    with caplog.at_level("WARNING"):
        train(cfg)
    warned = [r.getMessage() for r in caplog.records if "data.max_length=100000" in r.getMessage()]
    assert warned == [
        "data.max_length=100000 is more than the model's 512 positions: texts are cut at 512 tokens"
    ]
    assert "max_length: 512" in (Path(cfg.output_dir) / "config.yaml").read_text()


def test_the_tokenizer_limit_is_the_model_positions(tmp_path):
    """A model with fewer positions than its tokenizer's limit: both auto and a number stay in them."""
    cfg = compose_cfg(["model=tiny_bert", "model.config.max_position_embeddings=64"])
    tokenizer = load_tokenizer(cfg.model)
    assert tokenizer.model_max_length == 64
    values = {**dict(compose_cfg(["data=files", f"data.path={_long_csv(tmp_path)}"]).data)}
    for asked in ("auto", 300):
        config = DataConfig.from_dict({**values, "cache_dir": None, "max_length": asked})
        dm = TextDataModule(config, tokenizer)
        dm.setup("fit")
        assert dm.config.max_length <= 64
        assert max(dm.datasets["train"].lengths) <= 64


def test_roberta_positions_start_after_the_padding_index():
    assert max_positions(RobertaConfig(max_position_embeddings=514, pad_token_id=1)) == 512
    assert max_positions(BertConfig(max_position_embeddings=512)) == 512
    assert max_positions(None) is None
