"""Secrets nowhere: no file a run or a sweep writes, no console line and no logger payload holds
a secret value, whether its key is in the word list (``hf_token``) or not (``secrets.github``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from sftlab.utils.secrets import (
    MASK,
    is_secret,
    mask_files,
    masked,
    secret_values,
    to_environment,
)
from tests.conftest import ROOT, TINY, compose_cfg
from tests.helpers.wandb_offline import read_run

# On the command line: keys in the word list and not; in a config file (a sweep's multirun.yaml).
SECRETS = {
    "secrets.hf_token": "hf_first-secret-1111",
    "secrets.hftoken": "second-secret-2222",
    "secrets.github": "ghp_third-secret-3333",
}
IN_FILE = "fourth-secret-from-a-file-4444"
OVERRIDES = [f"+{key}={value}" for key, value in SECRETS.items()]
VALUES = [*SECRETS.values(), IN_FILE]
SWEEP_WITH_A_FAILED_JOB = 1  # the exit status of a sweep in which a job failed


def test_everything_under_secrets_is_masked_whatever_its_name():
    cfg = {
        "secrets": {"github": "g" * 8, "pin": 123456, "nested": {"x": "n" * 8}, "none": None},
        "model": {"pad_token_id": 0, "hf_token": "t" * 8, "tokenizer": "bert"},
        "keys": [{"password": "p" * 8, "auth": ""}],
    }
    assert masked(cfg) == {
        "secrets": {"github": MASK, "pin": MASK, "nested": {"x": MASK}, "none": None},
        "model": {"pad_token_id": 0, "hf_token": MASK, "tokenizer": "bert"},
        "keys": [{"password": MASK, "auth": ""}],
    }
    assert set(secret_values(cfg)) == {"g" * 8, "123456", "n" * 8, "t" * 8, "p" * 8}
    assert is_secret("+secrets.github") and is_secret("++secrets.hftoken")
    assert not is_secret("data.text_column") and not is_secret("model.tokenizer")


def test_secret_overrides_travel_through_the_environment(monkeypatch):
    """What Hydra records (and W&B's copy of sys.argv) holds a variable's name; the composed
    config holds the values, with their types."""
    argv = [
        "train.py",
        "-m",
        *OVERRIDES,
        "++secrets.pin=123456",
        "seed=1,2",
        "model.pad_token_id=0",
    ]
    environ: dict[str, str] = {}
    hidden = to_environment(argv, environ)
    assert hidden[:2] == ["train.py", "-m"] and hidden[-2:] == ["seed=1,2", "model.pad_token_id=0"]
    assert not any(value in arg for arg in hidden for value in [*SECRETS.values(), "123456"])
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    cfg = compose_cfg([*TINY, *hidden[2:-2]])
    assert OmegaConf.to_container(cfg.secrets, resolve=True) == {
        **{key.split(".")[1]: value for key, value in SECRETS.items()},
        "pin": "123456",  # a secret is text
    }


@pytest.mark.parametrize(
    "override", ["+secrets.token=a,b", "+secrets.token=[a,b]", "+secrets.token=a=b"]
)
def test_a_secret_it_cannot_move_is_refused_without_its_value(override):
    with pytest.raises(Exception, match=r"\+secrets.token=\.\.\.") as e:
        to_environment(["train.py", override], {})
    assert "a,b" not in str(e.value) and "a=b" not in str(e.value)


def test_masked_yaml_files_stay_valid_yaml(tmp_path):
    """``key: ***`` would be a YAML alias: Hydra's files are masked value by value."""
    secret = "hf_a-secret-5555"
    (tmp_path / "config.yaml").write_text(
        f"secrets:\n  hf_token: {secret}\n  pin: 123456\nx: ${{oc.env:A}}\n"
        f"task:\n- +secrets.hf_token={secret}\n"
    )
    mask_files(tmp_path, [secret, "123456"])
    assert yaml.safe_load((tmp_path / "config.yaml").read_text()) == {
        "secrets": {"hf_token": MASK, "pin": MASK},
        "x": "${oc.env:A}",
        "task": [f"+secrets.hf_token={MASK}"],
    }


def run_train(tmp_path: Path, *args: str, exit_code: int = 0) -> subprocess.CompletedProcess:
    """``python train.py`` as a user runs it: a new process, offline, no W&B login."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "SFTLAB_SECRET"))}
    env.update(HOME=str(home), HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT / "src"))
    result = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *args],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == exit_code, result.stdout[-2000:] + result.stderr[-3000:]
    return result


def leaks(folder: Path, result: subprocess.CompletedProcess) -> list[str]:
    """The files under ``folder`` (and the console streams) that hold a secret value."""
    files = [p for p in folder.rglob("*") if p.is_file()]
    found = [str(p) for p in files if any(v.encode() in p.read_bytes() for v in VALUES)]
    for name, text in (("stdout", result.stdout), ("stderr", result.stderr)):
        found += [name] if any(v in text for v in VALUES) else []
    return found


@pytest.mark.parametrize(
    "logger", ["csv", pytest.param("wandb", marks=[pytest.mark.slow], id="wandb")]
)
def test_no_file_or_console_line_of_a_run_holds_a_secret(tmp_path, logger):
    pytest.importorskip("wandb") if logger == "wandb" else None
    run = tmp_path / "run"
    result = run_train(
        tmp_path,
        *TINY,
        f"logger={logger}",
        "trainer.fast_dev_run=true",
        *OVERRIDES,
        f"hydra.run.dir={run}",
    )
    assert leaks(run, result) == []
    saved = OmegaConf.load(run / "config.yaml").secrets
    assert dict(saved) == {key.split(".")[1]: MASK for key in SECRETS}  # the values reached it
    assert (run / "model" / "README.md").is_file() and (run / "csv" / "hparams.yaml").is_file()
    if logger == "wandb":
        assert read_run(run)["config"]["secrets"]["github"] == MASK


def test_no_file_or_console_line_of_a_sweep_holds_a_secret(tmp_path):
    """A multirun with W&B offline: multirun.yaml, the launcher's console lines, each job's
    .hydra/, config, CSV hparams, model card and W&B run; a secret set in a config file too,
    and a job that fails the config check (its .hydra/ stays)."""
    pytest.importorskip("wandb")
    conf = tmp_path / "conf" / "secrets"
    conf.mkdir(parents=True)
    (conf / "mine.yaml").write_text(f"# @package secrets\nfrom_file: {IN_FILE}\n")
    sweep = tmp_path / "sweep"
    result = run_train(
        tmp_path,
        "-m",
        f"--config-dir={conf.parent}",
        *TINY,
        "logger=wandb",
        "trainer.fast_dev_run=true",
        *OVERRIDES,
        "+secrets=mine",
        "monitor=val/f1_macro,val/nothing",  # job 1 fails the config check
        f"hydra.sweep.dir={sweep}",
        exit_code=SWEEP_WITH_A_FAILED_JOB,
    )
    assert "#1 : " in result.stdout + result.stderr  # the launcher's lines were captured
    assert leaks(sweep, result) == []
    for path in sweep.rglob("*.yaml"):
        yaml.safe_load(path.read_text())  # masked files stay valid YAML
    saved = OmegaConf.load(sweep / "0" / "config.yaml").secrets
    assert set(saved.values()) == {MASK} and len(saved) == 4
    assert read_run(sweep / "0")["config"]["secrets"]["from_file"] == MASK
    assert (sweep / "1" / "error.txt").is_file() and (sweep / "1" / ".hydra").is_dir()
