"""predict.py: batch inference on files with a run's exported model."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys

import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf

from sftlab.deploy.predict import default_output, predict
from sftlab.inference import frames as frames_module
from sftlab.inference.frames import generation_frame, predict_frame
from sftlab.inference.predictor import Predictor, load_predictor, refuse_folder_code
from sftlab.tasks.metrics import classification_metrics
from sftlab.utils.cli import run_or_exit
from sftlab.utils.errors import SftlabError
from tests.conftest import ROOT
from tests.helpers.tiny_run import copy_run, trained_run


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return trained_run(tmp_path_factory)


def cfg(**kw):
    base = {
        "output": None,
        "text_column": None,
        "batch_size": 4,
        "device": "cpu",
        "progress": False,
    }
    return OmegaConf.create({**base, **kw})


def test_cli_on_validation_split_reproduces_stored_val_metrics(run, tmp_path):
    """The real command on <run>/data/validation.csv gives the val/* metrics train() stored."""
    out = tmp_path / "val.preds.csv"
    env = {
        **os.environ,
        "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
    }
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "predict.py"),
            f"run={run}",
            f"input={run / 'data' / 'validation.csv'}",
            f"output={out}",
            "batch_size=3",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    # piped: the progress bar's plain form, a line at the end (a bar in a terminal)
    assert re.search(r"predict: (\d+)/\1 batches \(100%", result.stdout + result.stderr)
    stored = json.loads((run / "metrics.json").read_text())
    preds = pd.read_csv(out)
    labels = load_predictor(run).labels
    assert list(preds.columns) == ["text", "label", "pred_label", *[f"prob_{n}" for n in labels]]
    label_ids = torch.tensor([labels.index(x) for x in preds["label"]])
    pred_ids = torch.tensor([labels.index(x) for x in preds["pred_label"]])
    metrics = classification_metrics(labels).clone(prefix="val/")
    computed = {k: float(v) for k, v in metrics(pred_ids, label_ids).items()}
    for key in ("val/acc", "val/f1_macro", "val/f1_weighted", *[f"val/recall_{n}" for n in labels]):
        assert computed[key] == pytest.approx(stored[key], abs=1e-6), key
    # The probabilities themselves, not only their argmax: cross-entropy equals val/loss.
    probs = preds[[f"prob_{n}" for n in labels]].to_numpy()
    loss = -sum(math.log(probs[i, j]) for i, j in enumerate(label_ids.tolist())) / len(preds)
    assert loss == pytest.approx(stored["val/loss"], abs=1e-5)
    assert probs.sum(axis=1) == pytest.approx([1.0] * len(preds), abs=1e-5)


@pytest.mark.parametrize("ext", [".jsonl", ".parquet", ".csv"])
def test_formats_and_default_output(run, tmp_path, ext):
    df = pd.DataFrame({"id": [7, 8, 9], "text": ["great crew", "lost my bag", "NA"]})
    inp = tmp_path / f"new{ext}"
    {
        ".jsonl": lambda p: df.to_json(p, orient="records", lines=True),
        ".parquet": df.to_parquet,
        ".csv": lambda p: df.to_csv(p, index=False),
    }[ext](inp)
    out = predict(cfg(run=str(run), input=str(inp)))
    assert out == tmp_path / f"new.preds{ext}" == default_output(inp)
    got = {
        ".jsonl": lambda p: pd.read_json(p, lines=True),
        ".parquet": pd.read_parquet,
        ".csv": lambda p: pd.read_csv(p, keep_default_na=False),
    }[ext](out)
    assert got["id"].tolist() == [7, 8, 9] and got["text"].tolist() == [
        "great crew",
        "lost my bag",
        "NA",
    ]
    direct = predict_frame(load_predictor(run, "cpu"), df["text"].tolist())
    assert got["pred_label"].tolist() == direct["pred_label"].tolist()
    assert got["prob_positive"].to_numpy() == pytest.approx(
        direct["prob_positive"].to_numpy(), abs=1e-6
    )
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp file left


def test_model_folder_directly_uses_its_sftlab_json(run, tmp_path):
    predictor = load_predictor(run / "model")
    trained = OmegaConf.load(run / "config.yaml").data.max_length
    assert isinstance(trained, int)
    assert (predictor.text_column, predictor.max_length) == ("text", trained)
    inp = tmp_path / "in.csv"
    pd.DataFrame({"text": ["good", "bad"]}).to_csv(inp, index=False)
    out = predict(cfg(run=str(run / "model"), input=str(inp), output=str(tmp_path / "o.csv")))
    assert len(pd.read_csv(out)) == 2


def test_cleaning_and_max_length_come_from_the_run_config(run, tmp_path):
    broken = copy_run(run, tmp_path / "run")
    conf = OmegaConf.load(broken / "config.yaml")
    conf.data.cleaning = ["normalize"]
    conf.data.max_length = 4
    OmegaConf.save(conf, broken / "config.yaml")
    predictor = load_predictor(broken, "cpu")
    assert predictor.cleaning == ["normalize"] and predictor.max_length == 4
    texts = ["  the   flight\twas great and on time  ", "the flight"]
    probs = predict_frame(predictor, texts)[
        ["prob_negative", "prob_neutral", "prob_positive"]
    ].to_numpy()
    assert probs[0] == pytest.approx(
        probs[1], abs=1e-6
    )  # cleaned, then cut to [CLS] the flight [SEP]


def test_output_is_atomic_on_failure(run, tmp_path, monkeypatch):
    inp = tmp_path / "in.csv"
    pd.DataFrame({"text": ["good"]}).to_csv(inp, index=False)
    out = tmp_path / "in.preds.csv"
    out.write_text("previous results\n")
    monkeypatch.setattr(
        pd.DataFrame, "to_csv", lambda *a, **k: (_ for _ in ()).throw(OSError("disk full"))
    )
    with pytest.raises(OSError):
        predict(cfg(run=str(run), input=str(inp)))
    assert out.read_text() == "previous results\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "in.preds.csv"]


def _fails(capsys, run, inp, **kw) -> str:
    with pytest.raises(SystemExit) as exit_info:
        run_or_exit(predict, cfg(run=str(run), input=str(inp), **kw), None)
    assert exit_info.value.code == 2
    err = [
        line
        for line in capsys.readouterr().err.splitlines()
        if line.strip() and "Loading weights" not in line
    ]
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def test_bad_input_one_line_each(run, tmp_path, capsys):
    good = tmp_path / "in.csv"
    pd.DataFrame({"review": ["good"], "stars": [5]}).to_csv(good, index=False)
    assert "no text column 'text' (columns: review, stars)" in _fails(capsys, run, good)

    header_only = tmp_path / "header.csv"
    header_only.write_text("text\n")
    assert "input file has a header but no rows" in _fails(capsys, run, header_only)
    zero = tmp_path / "zero.csv"
    zero.write_text("")
    assert "is empty" in _fails(capsys, run, zero)
    assert "not found" in _fails(capsys, run, tmp_path / "missing.csv")
    assert "would overwrite the input" in _fails(capsys, run, good, output=str(good))
    xlsx = tmp_path / "in.xlsx"
    xlsx.write_bytes(b"PK")
    assert "unknown input format '.xlsx'" in _fails(capsys, run, xlsx)

    assert "missing run=" in _fails(capsys, "???", good)
    no_model = copy_run(run, tmp_path / "no_model")
    shutil.rmtree(no_model / "model")
    assert "has no exported model" in _fails(capsys, no_model, good, text_column="review")


def test_model_whose_labels_do_not_match_the_run(run, tmp_path, capsys):
    other = copy_run(run, tmp_path / "run")
    conf = OmegaConf.load(other / "config.yaml")
    conf.data.labels = ["positive", "neutral", "negative"]
    OmegaConf.save(conf, other / "config.yaml")
    inp = tmp_path / "in.csv"
    pd.DataFrame({"text": ["good"]}).to_csv(inp, index=False)
    line = _fails(capsys, other, inp)
    assert "has labels ['negative', 'neutral', 'positive']" in line and "data.labels" in line


def test_unknown_task_is_a_clear_error(run, tmp_path):
    other = copy_run(run, tmp_path / "run")
    meta = json.loads((other / "model" / "sftlab.json").read_text())
    (other / "model" / "sftlab.json").write_text(json.dumps({**meta, "task": "ranking"}))
    with pytest.raises(SftlabError, match="task 'ranking' has no prediction yet"):
        predict(cfg(run=str(other), input=str(other / "data" / "test.csv")))


@pytest.mark.parametrize("name", ["predict", "serve"])
def test_entry_configs_compose(name):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from tests.conftest import CONF

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        composed = compose(name, overrides=["run=outputs/x"], return_hydra_config=True)
    assert composed.run == "outputs/x" and composed.device == "auto"
    assert composed.hydra.output_subdir is None  # no Hydra run dir for predict/serve
    assert OmegaConf.is_missing(composed, "input") == (name == "predict")


def test_texts_with_carriage_returns_survive_csv(run, tmp_path):
    """Tweets hold bare '\\r': the split files and the predictions keep one row per text."""
    from sftlab.export.hf_folder import write_splits

    texts = ["delayed\ragain", "two\nlines", "plain, with a comma", 'a "quote"']
    frame = pd.DataFrame({"text": texts, "label": ["negative"] * 4})
    write_splits({"test": frame}, tmp_path / "data", "review", "stars")
    back = pd.read_csv(tmp_path / "data" / "test.csv")
    assert back["review"].tolist() == texts and list(back.columns) == ["review", "stars"]
    out = predict(
        cfg(run=str(run), input=str(tmp_path / "data" / "test.csv"), text_column="review")
    )
    assert pd.read_csv(out)["review"].tolist() == texts


def test_training_and_prediction_read_a_file_alike(run, tmp_path, monkeypatch, caplog):
    """One reader, one missing-value rule: "NA", "null" and "N/A" are text, blank cells missing."""
    from sftlab.data.datamodule import DataConfig, TextDataModule
    from sftlab.deploy import predict as predict_module
    from tests.conftest import TINY_CSV

    words = ["NA", "null", "N/A"]
    inp = tmp_path / "words.csv"
    special = pd.DataFrame({"text": [*words, "", "  "], "label": ["negative"] * 5})
    pd.concat([pd.read_csv(TINY_CSV), special]).to_csv(inp, index=False)

    predictor = load_predictor(run, "cpu")
    dm = TextDataModule(
        DataConfig.from_dict({"source": "files", "path": str(inp)}), predictor.tokenizer, seed=42
    )
    with caplog.at_level("WARNING"):
        trained = {t for frame in dm.load_frames().values() for t in frame["text"]}
    assert set(words) <= trained and not {"", "  ", "nan"} & trained
    assert (
        "dropped 2 rows with an empty text (after cleaning) in column 'text' (first: row 95)"
        in caplog.text
    )

    seen = []
    real = predict_module.predict_frame
    monkeypatch.setattr(
        predict_module,
        "predict_frame",
        lambda p, texts, **kw: seen.append(texts) or real(p, texts, **kw),
    )
    caplog.clear()
    with caplog.at_level("WARNING"):
        predict(cfg(run=str(run), input=str(inp)))
    assert seen[0][-5:] == [*words, "", ""]
    assert "2 rows have no text (first: row 95)" in caplog.text  # the row training names


class _Recording:
    """A tokenizer that records the length of every text it is asked to tokenize."""

    def __init__(self, tokenizer):
        self.tokenizer, self.seen = tokenizer, []

    def __call__(self, texts, **kw):
        self.seen += [len(t) for t in texts]
        return self.tokenizer(texts, **kw)

    def __getattr__(self, name):
        return getattr(self.tokenizer, name)


def test_a_huge_text_is_cut_to_max_chars_before_tokenizing(run, tmp_path):
    """As training does (data.max_chars): predict.py and serve.py never tokenize 4 MB whole."""
    predictor = load_predictor(run, "cpu")
    meta = json.loads((run / "model" / "sftlab.json").read_text())
    assert meta["max_chars"] == predictor.max_chars == 32 * predictor.max_length
    huge = "the flight was great and on time " * 120_000
    recording = _Recording(predictor.tokenizer)
    predictor.tokenizer = recording
    got = predict_frame(predictor, [huge, "ok"])
    assert max(recording.seen) <= predictor.max_chars
    want = predict_frame(predictor, [huge[: predictor.max_chars], "ok"])
    pd.testing.assert_frame_equal(got, want)

    older = copy_run(run, tmp_path / "run") / "model"  # exported before max_chars was written
    meta.pop("max_chars")
    (older / "sftlab.json").write_text(json.dumps(meta))
    assert load_predictor(older, "cpu").max_chars == 32 * predictor.max_length


def test_a_huge_prompt_keeps_its_end_as_generation_does(monkeypatch):
    """Generation drops a long prompt's start, so the character cut keeps its end."""
    seen = []

    def fake_generate(model, tokenizer, prompts, *args, **kw):
        seen.extend(prompts)
        return ["reply"] * len(prompts)

    monkeypatch.setattr(frames_module, "generate", fake_generate)
    predictor = Predictor(None, None, [], "generation", "prompt", max_length=16, cleaning=[])
    huge = "x" * 10_000 + "Translate: hello"
    chat = [{"role": "user", "content": huge}]
    out = generation_frame(predictor, [huge, "short"])
    assert out["generated"].tolist() == ["reply", "reply"]
    assert seen == [huge[-32 * 16 :], "short"]
    generation_frame(predictor, [chat])
    assert seen[-1] == [{"role": "user", "content": huge[-32 * 16 :]}]


@pytest.mark.parametrize("file", ["config.json", "tokenizer_config.json"])
def test_a_folder_that_needs_its_own_code_is_refused(run, tmp_path, file):
    """trust_remote_code=False always: an auto_map to a class sftlab does not register stops in
    one line (it used to load with the library's class, or prompt), and nothing of it runs."""
    folder = copy_run(run, tmp_path / "run") / "model"
    (folder / "my_code.py").write_text(f"open({str(tmp_path / 'ran')!r}, 'w').close()\n")
    conf = json.loads((folder / file).read_text())
    conf["auto_map"] = {"AutoModelForSequenceClassification": "my_code.Mine"}
    if file == "tokenizer_config.json":
        conf["auto_map"] = {"AutoTokenizer": ["my_code.MyTokenizer", None]}
    (folder / file).write_text(json.dumps(conf))
    with pytest.raises(SftlabError, match=r"my_code\.M.* in auto_map\).*trust_remote_code=False"):
        load_predictor(folder, "cpu")
    assert not (tmp_path / "ran").exists()


def test_sftlab_own_pooled_class_is_not_foreign_code(tmp_path):
    own = {
        "AutoConfig": "modeling_pooled.PooledClassifierConfig",
        "AutoModelForSequenceClassification": "modeling_pooled.PooledForSequenceClassification",
    }
    (tmp_path / "config.json").write_text(
        json.dumps({"model_type": "sftlab_pooled", "auto_map": own})
    )
    refuse_folder_code(tmp_path)  # loaded from sftlab's package, registered in models/backbone.py
