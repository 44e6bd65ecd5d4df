"""Cleaning steps, and the duplicates and empty rows dropped with a count."""

from __future__ import annotations

import logging

import pandas as pd
import pytest

from sftlab.data.cleaning import DEFAULT_STEPS, clean_texts
from sftlab.data.datamodule import DataConfig, TextDataModule
from sftlab.utils.errors import SftlabError


@pytest.mark.parametrize(
    ("step", "text", "expected"),
    [
        ("html", "<p>Great &amp; <b>cheap</b></p> &lt;3", " Great &  cheap   <3"),
        ("html", "a < b and <3", "a < b and <3"),  # not markup
        ("normalize", "ｆｕｌｌ\u00a0width\u200b  and\n\ttabs ", "full width and tabs"),
        ("lowercase", "Not GOOD", "not good"),
        ("urls", "see https://t.co/x1 or www.x.com/a?b", "see http or http"),
        ("mentions", "@united thanks, mail a@b.com", "@user thanks, mail a@b.com"),
        ("stopwords", "this is not the best flight", "best flight"),
        ("punctuation", "Don't! Really?? ok...", "Dont Really ok"),
    ],
)
def test_each_step(step, text, expected):
    assert clean_texts([text], [step]) == [expected]


def test_default_steps_keep_what_a_transformer_uses():
    assert list(DEFAULT_STEPS) == ["html", "normalize"]
    text = "I did NOT like it!!! <br/>Never again &#128544;"
    assert clean_texts([text], DEFAULT_STEPS) == ["I did NOT like it!!! Never again \U0001f620"]


def test_steps_apply_in_order():
    assert clean_texts(["Hi @Bob"], ["mentions", "lowercase"]) == ["hi @user"]
    assert clean_texts(["Hi @Bob"], ["lowercase", "punctuation"]) == ["hi bob"]


def test_unknown_step_is_one_line():
    with pytest.raises(SftlabError, match="unknown cleaning step 'stem'.*html, normalize"):
        clean_texts(["x"], ["stem"])
    with pytest.raises(SftlabError, match="unknown cleaning step"):
        DataConfig(source="files", cleaning=["stem"])


def test_cleaning_duplicates_and_empty_rows_in_the_datamodule(tmp_path, caplog):
    rows = [{"text": f"<i>message</i> number {i}", "label": "ab"[i % 2]} for i in range(20)]
    rows += [{"text": "message number 3", "label": "b"}]  # a duplicate after cleaning, same label
    rows += [{"text": "message  number 4", "label": "b"}]  # a duplicate after cleaning, other label
    rows += [{"text": "<br>", "label": "a"}, {"text": "   ", "label": "b"}]  # empty after cleaning
    path = tmp_path / "d.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    cfg = DataConfig(
        source="files",
        path=str(path),
        split=[0.5, 0.25, 0.25],
        cleaning=["html", "normalize", "lowercase"],
    )
    with caplog.at_level(logging.WARNING):
        dm = TextDataModule(cfg, tokenizer=None)
        frames = dm.load_frames()
    pool = pd.concat(frames.values())
    assert len(pool) == 20 and pool["text"].is_unique
    assert (
        "message number 4" in set(pool["text"])
        and pool.loc[pool.text == "message number 4", "label"].item() == "a"
    )
    log = caplog.text
    assert "dropped 2 rows with an empty text (after cleaning)" in log and "first: row 24" in log
    assert "dropped 2 exact duplicate texts" in log and "1 texts had conflicting labels" in log


def test_duplicates_kept_when_asked(tmp_path):
    rows = [{"text": f"t{i % 10}", "label": "ab"[i % 2]} for i in range(20)]
    path = tmp_path / "d.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    dm = TextDataModule(DataConfig(source="files", path=str(path), drop_duplicates=False), None)
    assert sum(len(f) for f in dm.load_frames().values()) == 20
