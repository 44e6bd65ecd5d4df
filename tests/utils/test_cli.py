"""A run that stops with one line removes only what it created in its run dir: never a folder
the user pointed hydra.run.dir at, nor the files that were in it (issue 20, point 8)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from sftlab.utils import cli
from sftlab.utils.errors import SftlabError
from tests.helpers.cli import train_cli


def _hydra_writes(run_dir: Path) -> None:
    """What Hydra writes into a run dir before sftlab runs (it appends to train.log)."""
    (run_dir / ".hydra").mkdir(parents=True, exist_ok=True)
    for name in ("config.yaml", "hydra.yaml", "overrides.yaml"):
        (run_dir / ".hydra" / name).write_text("written by this run\n")
    with (run_dir / "train.log").open("a") as f:
        f.write("a line of this run\n")


def _fail(cfg) -> None:
    raise SftlabError("a bad value")


def _stops_with_one_line(run_dir: Path, capsys) -> None:
    cli.NoteRunDir().on_run_start(OmegaConf.create({"hydra": {"run": {"dir": str(run_dir)}}}))
    _hydra_writes(run_dir)
    with pytest.raises(SystemExit) as stop:
        cli.run_or_exit(_fail, None, str(run_dir))
    assert stop.value.code == 2
    assert capsys.readouterr().err == "error: a bad value\n"


def test_a_failed_run_removes_the_dir_it_created(tmp_path, capsys):
    run_dir = tmp_path / "outputs" / "run"
    _stops_with_one_line(run_dir, capsys)
    assert not run_dir.exists()


def test_a_failed_run_keeps_a_folder_that_was_there_and_its_files(tmp_path, capsys):
    run_dir = tmp_path / "mine"
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / ".hydra" / "notes.txt").write_text("my notes")
    (run_dir / "train.log").write_text("my earlier run\n")
    _stops_with_one_line(run_dir, capsys)
    assert (run_dir / ".hydra" / "notes.txt").read_text() == "my notes"
    assert (run_dir / "train.log").read_text().startswith("my earlier run\n")
    assert sorted(p.name for p in (run_dir / ".hydra").iterdir()) == ["notes.txt"]


def test_an_empty_folder_the_user_made_stays(tmp_path, capsys):
    run_dir = tmp_path / "empty"
    run_dir.mkdir()
    _stops_with_one_line(run_dir, capsys)
    assert run_dir.is_dir() and not any(run_dir.iterdir())


def test_without_a_note_nothing_is_removed(tmp_path, capsys):
    run_dir = tmp_path / "unknown"
    _hydra_writes(run_dir)
    with pytest.raises(SystemExit):
        cli.run_or_exit(_fail, None, str(run_dir))
    assert (run_dir / ".hydra" / "config.yaml").is_file()


def _train_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return train_cli(*args, cwd=cwd)


def test_train_py_keeps_the_users_folder_and_removes_its_own(tmp_path):
    """train.py with a value the config check refuses (before torch loads): hydra.run.dir at
    the user's folder keeps the folder and its files; the default run dir goes entirely."""
    mine = tmp_path / "mine"
    (mine / ".hydra").mkdir(parents=True)
    (mine / ".hydra" / "notes.txt").write_text("my notes")
    result = _train_cli("optimizer.lr=abc", f"hydra.run.dir={mine}", cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1].startswith("error: optimizer.lr='abc'")
    assert (mine / ".hydra" / "notes.txt").read_text() == "my notes"
    assert sorted(p.name for p in mine.rglob("*")) == [".hydra", "notes.txt"]

    result = _train_cli("optimizer.lr=abc", cwd=tmp_path)  # outputs/<date>/<time>-<suffix>
    assert result.returncode == 2, result.stderr[-2000:]
    assert not [p for p in (tmp_path / "outputs").rglob("*") if p.is_file()]
