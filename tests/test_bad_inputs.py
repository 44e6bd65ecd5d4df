"""The bad-input table: each case fails in one line naming the problem and the fix, writes
nothing, and leaves an earlier run dir exactly as it was (README: Troubleshooting)."""

from __future__ import annotations

import gzip
import io
import os
import shutil
from pathlib import Path
from unittest import mock

import pandas as pd
import pytest
from omegaconf import OmegaConf

from sftlab import train
from sftlab.deploy.predict import predict
from sftlab.deploy.serve import serve
from sftlab.export.__main__ import _export_cli as export_cli
from sftlab.utils.errors import SftlabError
from tests.conftest import TINY, compose_cfg
from tests.helpers.tiny_run import trained_run


@pytest.fixture(scope="module")
def earlier(tmp_path_factory):
    """A finished run and a stopped copy of it (no metrics, status interrupted)."""
    run = trained_run(tmp_path_factory)
    stopped = tmp_path_factory.mktemp("stopped") / "run"
    shutil.copytree(run, stopped)
    (stopped / "run.json").write_text('{"status": "interrupted"}')
    (stopped / "metrics.json").unlink()
    return run, stopped


def snapshot(*dirs: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p): (p.stat().st_size, p.stat().st_mtime_ns) for d in dirs for p in sorted(d.rglob("*"))
    }


def _train(*overrides: str):
    def go(tmp: Path, earlier: tuple[Path, Path]):
        args = [o.format(run=earlier[0], stopped=earlier[1], tmp=tmp) for o in overrides]
        train(compose_cfg([*TINY, *args], output_dir=tmp / "new"))

    return go


def _csv(rows: list[tuple[str, str]], name: str = "bad.csv"):
    def go(tmp: Path, earlier):
        pd.DataFrame(rows, columns=["text", "label"]).to_csv(tmp / name, index=False)

    return go


def _predict(**kwargs: str):
    def go(tmp: Path, earlier):
        values = {
            "run": str(earlier[0]),
            "input": str(earlier[0] / "data" / "test.csv"),
            "output": str(tmp / "preds.csv"),
            "text_column": None,
            "batch_size": 8,
            "device": "cpu",
        }
        values.update({k: v.format(run=earlier[0], tmp=tmp) for k, v in kwargs.items()})
        predict(OmegaConf.create(values))

    return go


def _serve(**kwargs: str):
    def go(tmp: Path, earlier):
        values = {
            "run": str(earlier[0]),
            "host": "127.0.0.1",
            "port": 0,
            "batch_size": 8,
            "max_texts": 8,
            "device": "cpu",
        }
        values.update({k: v.format(run=earlier[0], tmp=tmp) for k, v in kwargs.items()})
        serve(OmegaConf.create(values))

    return go


def _export(*argv: str):
    def go(tmp: Path, earlier):
        export_cli([a.format(run=earlier[0], tmp=tmp) for a in argv])

    return go


def _truncated_gz(tmp: Path, earlier):
    data = gzip.compress((earlier[0] / "data" / "train.csv").read_bytes())
    (tmp / "rows.csv.gz").write_bytes(data[: len(data) // 2])
    _train("data.path={tmp}/rows.csv.gz")(tmp, earlier)


def _unreadable(tmp: Path, earlier):
    """Reading the data file raises PermissionError (chmod 000 for anyone but root)."""
    path = shutil.copy(earlier[0] / "data" / "train.csv", tmp / "rows.csv")
    real_open = io.open

    def guarded(file, *args, **kwargs):
        if isinstance(file, (str, os.PathLike)) and os.fspath(file) == str(path):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(file, *args, **kwargs)

    with mock.patch("io.open", guarded), mock.patch("builtins.open", guarded):
        _train("data.path={tmp}/rows.csv")(tmp, earlier)


def _truncated_last_checkpoint(tmp: Path, earlier):
    copy = shutil.copytree(earlier[1], tmp / "stopped")
    last = copy / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    _train("resume={tmp}/stopped")(tmp, earlier)


def _corrupt_checkpoint(tmp: Path, earlier):
    copy = shutil.copytree(earlier[0], tmp / "copy")
    (copy / "checkpoints" / "best.ckpt").write_bytes(b"not a checkpoint")
    export_cli([f"run={copy}", "format=hf"])


# (case, what runs, the message it must print): data, config, checkpoint, resume, predict, serve
CASES = [
    (
        "lr not a number",
        _train("optimizer.lr=abc"),
        r"optimizer.lr='abc' has the wrong type: torch.optim.AdamW expects",
    ),
    (
        "max_epochs not a number",
        _train("trainer.max_epochs=two"),
        r"trainer.max_epochs='two' has the wrong type",
    ),
    # Values of the right type outside their range (config.ranges): refused before any data is read.
    (
        "unlimited epochs without max_steps",
        _train("trainer.max_epochs=-1"),
        r"trainer.max_epochs=-1 trains without an end, .*set trainer.max_steps=N",
    ),
    (
        "warmup longer than the run",
        _train("scheduler.warmup_ratio=5"),
        r"scheduler.warmup_ratio must be a number in \[0, 1\), got 5",
    ),
    ("negative lr", _train("optimizer.lr=-0.1"), r"optimizer.lr must be a number > 0, got -0.1"),
    (
        "dropout above 1",
        _train("model.dropout=2.0"),
        r"model.dropout must be a number in \[0, 1\) or null, got 2.0",
    ),
    (
        "no devices",
        _train("trainer.devices=0"),
        r"trainer.devices must be a count >= 1, -1 \(every device\), 'auto' or a list",
    ),
    (
        "max_length too short",
        _train("data.max_length=4"),
        r"data.max_length must be a number of tokens >= 8 or 'auto', got 4",
    ),
    (
        "unknown trainer key",
        _train("+trainer.max_epoch=3"),
        r"unknown key trainer.max_epoch: lightning.pytorch.Trainer takes max_epochs",
    ),
    (
        "unknown optimizer key",
        _train("+optimizer.momentumm=0.9"),
        r"unknown key optimizer.momentumm",
    ),
    (
        "monitor never logged",
        _train("monitor=val/f1_macr0"),
        r"monitor=val/f1_macr0 is not a metric data.task=classification logs: use one of .*val/f1_macro",
    ),
    (
        "optimized_metric never logged",
        _train("optimized_metric=val/acuracy"),
        r"optimized_metric=val/acuracy is not a metric",
    ),
    (
        "per-class monitor of an unknown label",
        _train("monitor=val/f1_postive"),
        r"monitor=val/f1_postive is not a metric",
    ),
    (
        "monitor_mode",
        _train("monitor_mode=maximum"),
        r"monitor_mode must be 'min' or 'max', got 'maximum'",
    ),
    (
        "batch size not a number",
        _train("data.batch_size=abc"),
        r"data.batch_size='abc' has the wrong type: expected int",
    ),
    (
        "split fractions",
        _train("data.split=[0.5,0.5,0.5]"),
        r"data.split must be 3 fractions summing to 1",
    ),
    (
        "cached features of a trained body",
        _train("+strategy.cache_features=true"),
        r"strategy.cache_features needs a frozen body, strategy=full trains it",
    ),
    (
        "class weights for regression",
        _train("data.task=regression", "loss.class_weights=balanced"),
        r"loss.class_weights is for single-label classification",
    ),
    (
        "checkpoint interval",
        _train("checkpoint.every_n_steps=0"),
        r"checkpoint.every_n_steps must be a positive number of steps",
    ),
    (
        "missing data file",
        _train("data.path={tmp}/nope.csv"),
        r"data file not found: .*nope.csv \(set data.path to an existing file\)",
    ),
    (
        "missing text column",
        _train("data.text_column=review"),
        r"column 'review' \(data.text_column\) not found; columns are: text, label",
    ),
    (
        "label outside data.labels",
        _train("data.labels=[negative,positive]"),
        r"column 'label' has label 'neutral' not in data.labels",
    ),
    (
        "a single class",
        lambda tmp, e: (
            _csv([(f"t{i}", "a") for i in range(20)])(tmp, e),
            _train("data.path={tmp}/bad.csv")(tmp, e),
        ),
        r"holds a single class \('a'\); classification needs at least 2",
    ),
    ("resume a missing dir", _train("resume={tmp}/gone"), r"resume=.*gone: no such run dir"),
    (
        "resume a finished run",
        _train("resume={run}"),
        r"that run finished; its results are in .*metrics.json",
    ),
    (
        "resume without last.ckpt",
        lambda tmp, e: (
            shutil.copytree(e[1], tmp / "nockpt", ignore=shutil.ignore_patterns("last.ckpt")),
            _train("resume={tmp}/nockpt")(tmp, e),
        ),
        r"no checkpoints/last.ckpt in it",
    ),
    (
        "resume with fast_dev_run",
        _train("resume={stopped}", "trainer.fast_dev_run=true"),
        r"trainer.fast_dev_run saves no checkpoints",
    ),
    # File faults (sftlab.utils.files.reading): the file, the cause and the fix in one line.
    (
        "truncated .csv.gz",
        _truncated_gz,
        r"cannot read .*rows.csv.gz: it is truncated or corrupt \(Compressed file ended",
    ),
    (
        "unreadable data file",
        _unreadable,
        r"cannot read .*rows.csv: permission denied: make it readable \(chmod a\+r",
    ),
    (
        "unknown encoding",
        _train("data.encoding=klingon"),
        r"data.encoding=klingon is not an encoding Python knows: use e.g. utf-8",
    ),
    (
        "resume from a truncated last.ckpt",
        _truncated_last_checkpoint,
        r"cannot read the checkpoint .*last.ckpt: it is truncated or corrupt .*: restore it, or "
        r"start a new run without resume=",
    ),
    (
        "re-export a corrupt checkpoint",
        _corrupt_checkpoint,
        r"cannot read the checkpoint .*best.ckpt",
    ),
    (
        "export format",
        _export("run={run}", "format=tflite"),
        r"unknown format=tflite: use format=onnx or format=hf",
    ),
    ("predict a missing run", _predict(run="{tmp}/gone"), r"run=.*gone not found: pass a run dir"),
    ("predict a missing input", _predict(input="{tmp}/none.csv"), r"input file not found"),
    (
        "predict onto its input",
        _predict(output="{run}/data/test.csv"),
        r"would overwrite the input",
    ),
    (
        "predict a run without model/",
        _predict(run="{run}/checkpoints"),
        r"neither a run dir \(config.yaml \+ model/\) nor a model folder",
    ),
    ("serve a missing run", _serve(run="{tmp}/gone"), r"run=.*gone not found"),
    (
        "serve on a bad port",
        _serve(port="70000"),
        r"port must be a TCP port \(0-65535\), got '70000'",
    ),
]


@pytest.mark.parametrize(("case", "action", "message"), CASES, ids=[c[0] for c in CASES])
def test_bad_input(case, action, message, earlier, tmp_path):
    before = snapshot(*earlier)
    with pytest.raises(SftlabError, match=message) as err:
        action(tmp_path, earlier)
    assert "\n" not in str(err.value)  # one line
    assert not (tmp_path / "new").exists()  # nothing written for the new run
    assert snapshot(*earlier) == before  # earlier runs untouched


def test_the_table_is_large_enough():
    assert len(CASES) >= 20 and len({c[0] for c in CASES}) == len(CASES)
