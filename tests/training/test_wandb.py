"""logger=wandb without a login: offline runs in the run dirs, one finished run per sweep job."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from sftlab.utils.secrets import masked
from tests.conftest import ROOT, TINY
from tests.helpers.wandb_offline import read_run


def test_secrets_are_masked_in_the_logged_config():
    cfg = {
        "model": {"tokenizer": "t", "hf_token": "x", "pad_token_id": 0},
        "api_key": "y",
        "WANDB-SECRET": "z",
        "keys": [{"password": "p", "auth": ""}],
        "hub": {"credentials": "c"},
    }
    assert masked(cfg) == {
        "model": {"tokenizer": "t", "hf_token": "***", "pad_token_id": 0},
        "api_key": "***",
        "WANDB-SECRET": "***",
        "keys": [{"password": "***", "auth": ""}],
        "hub": {"credentials": "***"},
    }


def test_wandb_multirun_offline_never_prompts(tmp_path):
    pytest.importorskip("wandb")
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env.update(
        HOME=str(home), HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT / "src"), WANDB_SILENT="true"
    )
    sweep = tmp_path / "sweep"
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "train.py"),
            "-m",
            *TINY,
            "logger=wandb",
            "logger.wandb.predictions=5",
            "trainer.max_epochs=1",
            "+secrets.hf_token=do-not-log-me",
            "seed=1,2",
            f"hydra.sweep.dir={sweep}",
        ],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("wandb sync ") == 2
    names = set()
    for job in ("0", "1"):
        run = read_run(sweep / job)
        metrics = json.loads((sweep / job / "metrics.json").read_text())
        assert run["group"] == f"{sweep.parent.name}_{sweep.name}"  # grouped by the multirun dir
        names.add(run["name"])
        assert (
            run["config"]["seed"] == int(job) + 1
            and run["config"]["model"]["config"]["hidden_size"] == 32
        )
        assert run["config"]["secrets"]["hf_token"] == "***"
        assert "do-not-log-me" not in json.dumps(run["config"]) + run["name"] + json.dumps(
            run["summary"]
        )
        for key in (
            "test/acc",
            "test/f1_macro",
            "test/recall_neutral",
            "best_val/f1_macro",
            "train_rows",
        ):
            assert run["summary"][key] == pytest.approx(metrics[key])
        assert run["summary"]["test/predictions/nrows"] == 5
        assert run["summary"]["test/per_class/nrows"] == 3
        assert (
            run["summary"]["test/confusion_matrix_table/nrows"] == 9
        )  # (true, predicted) count rows
        logged = {k for row in run["history"] for k in row}
        assert {"train/loss_epoch", "val/f1_macro", "val/loss", "test/acc"} <= logged
        assert (sweep / job / "csv" / "metrics.csv").exists()  # the CSV log runs alongside
        assert (sweep / job / "report" / "curves.png").exists()
    assert len(names) == 2 and all("seed=" in n for n in names)  # named by the overrides


def test_login_state_comes_from_api_key_or_netrc(tmp_path, monkeypatch):
    from sftlab.training.loggers import wandb_logged_in

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("NETRC", raising=False)
    assert not wandb_logged_in()
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine api.wandb.ai\n  login user\n  password abc\n")
    netrc.chmod(0o600)
    assert wandb_logged_in()
    netrc.unlink()
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert wandb_logged_in()
