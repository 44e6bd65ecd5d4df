"""Nothing is lost or overwritten silently (issue 20, point 8): a new run never overwrites a run
dir, a resumed run leaves no second dir behind, a full disk marks the run failed in one line, a
signal after training says so and the run finishes without training again."""

from __future__ import annotations

import errno
import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from sftlab import train
from sftlab.recipes import steps
from sftlab.tasks.base import EncoderTask
from sftlab.training import lifecycle, resume
from sftlab.training.checkpoint_io import StreamingCheckpointIO
from sftlab.training.resume import LAST, RUN_FILE, RunPlan
from sftlab.utils import cli, signals
from sftlab.utils.errors import SftlabError
from tests.conftest import ROOT, TINY, compose_cfg
from tests.helpers.run_dirs import tiny, unfinished_run


def _state(run_dir: Path) -> dict:
    return json.loads((run_dir / RUN_FILE).read_text())


def _snapshot(run_dir: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in sorted(run_dir.rglob("*"))}


# -- a new run never overwrites a run dir ----------------------------------------------------


def test_a_new_run_in_a_stopped_runs_dir_says_how_to_resume_it(tmp_path):
    run = unfinished_run(tmp_path / "run")
    before = _snapshot(run)
    with pytest.raises(SftlabError) as err:
        train(tiny(run))
    assert str(err.value) == (
        f"the run dir {run} already holds a run (checkpoints/last.ckpt); a new run would "
        f"overwrite it: resume it with resume={run}, or choose another dir with hydra.run.dir=..."
    )
    assert _snapshot(run) == before  # untouched, and no lock left behind


def test_a_new_run_in_a_finished_runs_dir_is_refused(tmp_path):
    run = unfinished_run(tmp_path / "run")
    (run / "checkpoints" / "best.ckpt").write_bytes(b"")
    (run / "metrics.json").write_text("{}")
    (run / "model").mkdir()
    (run / RUN_FILE).write_text(json.dumps({**_state(run), "status": "finished"}))
    before = _snapshot(run)
    for how in ([], ["resume=auto", f"runs_dir={tmp_path}"]):  # auto: nothing unfinished
        with pytest.raises(SftlabError) as err:
            resume.plan(tiny(run, *how))
        assert "\n" not in str(err.value)
        assert str(err.value).endswith(
            "already holds a run (checkpoints/best.ckpt, checkpoints/last.ckpt, metrics.json, "
            "model); a new run would overwrite it: choose another dir with hydra.run.dir=..."
        )
    assert _snapshot(run) == before


def test_a_new_run_in_a_dir_with_only_hydras_files_starts(tmp_path):
    out = tmp_path / "run"
    (out / ".hydra").mkdir(parents=True)
    (out / "train.log").write_text("")
    plan = resume.plan(tiny(out))
    assert plan.out == out and plan.ckpt is None
    plan.release()


# -- a resumed run leaves no second dir ------------------------------------------------------


def test_a_resumed_run_logs_into_its_own_dir_and_leaves_no_shell(tmp_path):
    """Hydra made a dir for the `resume=<dir>` command (.hydra/, train.log); the run works in
    its own dir. Its log lines go there, and the made dir goes at the end."""
    shell = tmp_path / "outputs" / "today"
    cli.NoteRunDir().on_run_start(OmegaConf.create({"hydra": {"run": {"dir": str(shell)}}}))
    (shell / ".hydra").mkdir(parents=True)
    (shell / ".hydra" / "config.yaml").write_text("")
    handler = logging.FileHandler(shell / "train.log")
    root = logging.getLogger()
    root.addHandler(handler)
    run = tmp_path / "run"
    run.mkdir()
    (run / "train.log").write_text("first session\n")
    plan = RunPlan(None, run, run / LAST, {"status": "interrupted"})
    log = logging.getLogger("sftlab.test")
    try:
        log.warning("before the plan")
        with lifecycle.session(plan, hydra_dir=shell):
            log.warning("resumed")
    finally:
        for each in list(root.handlers):
            if getattr(each, "baseFilename", "").startswith(str(tmp_path)):
                root.removeHandler(each)
                each.close()
    assert not shell.exists() and (tmp_path / "outputs").is_dir()
    assert (run / "train.log").read_text() == "first session\nbefore the plan\nresumed\n"


# -- a full disk -----------------------------------------------------------------------------


def test_a_full_disk_marks_the_run_failed_in_one_line(tiny_cfg, tmp_path, monkeypatch):
    """The first checkpoint finds the disk full, and so does the atomic write of run.json:
    run.json is rewritten in place to `failed`, and the error is one line."""
    full = []

    def no_space(self, checkpoint, path, storage_options=None):
        full.append(path)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    real_write = resume.write_json

    def write_json(path, data):
        if full:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real_write(path, data)

    monkeypatch.setattr(StreamingCheckpointIO, "save_checkpoint", no_space)
    monkeypatch.setattr(resume, "write_json", write_json)
    out = tmp_path / "run"
    with pytest.raises(SftlabError) as err:
        train(tiny_cfg("trainer.max_epochs=1"))
    assert full and str(err.value) == (
        f"No space left on device while writing into {out}: free some space, then start the "
        "run again"
    )
    assert _state(out)["status"] == "failed"
    assert not (out / "run.lock").exists()


# -- a signal after training -----------------------------------------------------------------

# Early stopping ends this run after 2 of 4 epochs (nothing improves at this learning rate): a
# resumed run that entered training again would run epoch 3.
EARLY = ["trainer.max_epochs=4", "early_stopping.patience=1", "strategy.lr=1e-12"]


@pytest.fixture
def our_handlers():
    """SIGTERM raises Interrupted, as under train.py; the test process's handlers come back."""
    saved = {s: signal.getsignal(s) for s in signals.SIGNALS}
    signals.install()
    yield
    for s, handler in saved.items():
        signal.signal(s, handler)


def _sigterm_in(monkeypatch, stage: str) -> None:
    """SIGTERM this process once, in the middle of ``stage`` (test or export)."""
    sent = []

    def wrap(real):
        def in_stage(*args, **kwargs):
            if not sent:
                sent.append(stage)
                os.kill(os.getpid(), signal.SIGTERM)
            return real(*args, **kwargs)

        return in_stage

    if stage == "test":
        monkeypatch.setattr(EncoderTask, "test_step", wrap(EncoderTask.test_step))
    else:
        monkeypatch.setattr(steps, "export_model", wrap(steps.export_model))


@pytest.mark.parametrize("stage", ["test", "export"])
def test_a_signal_after_training_says_so_and_the_run_finishes_without_training(
    tmp_path, monkeypatch, our_handlers, stage
):
    out = tmp_path / "run"
    _sigterm_in(monkeypatch, stage)
    with pytest.raises(signals.Interrupted) as stop:
        train(compose_cfg([*TINY, *EARLY], output_dir=out))
    assert cli.interrupted_line(stop.value) == (
        "interrupted by SIGTERM: training finished; the report was not written: rerun with "
        f"python train.py resume={out} (it tests and exports without training again)"
    )
    state = _state(out)
    assert state["status"] == "interrupted" and state["trained"] is True
    assert torch.load(out / LAST, weights_only=True)["epoch"] < 3  # early stopping ended it
    assert not (out / "report.md").exists() and not (out / "run.lock").exists()
    monkeypatch.undo()

    trained = []
    real_step = EncoderTask.training_step

    def training_step(self, *args):
        trained.append(self.trainer.global_step)
        return real_step(self, *args)

    monkeypatch.setattr(EncoderTask, "training_step", training_step)
    metrics = train(compose_cfg([*TINY, f"resume={out}"], output_dir=tmp_path / "other"))
    assert trained == []  # tested and exported, not trained again
    assert "test/f1_macro" in metrics and (out / "report.md").is_file()
    assert (out / "model" / "config.json").is_file() and _state(out)["status"] == "finished"


@pytest.mark.slow
def test_train_py_resume_finishes_in_its_own_dir_and_leaves_no_other(tmp_path):
    """`python train.py resume=<dir>` (Hydra makes a new dir for the command) of a run stopped
    in its test: the run finishes in its own dir, logs there, and no other dir is left."""
    out = tmp_path / "run"
    with pytest.MonkeyPatch.context() as mp:
        saved = {s: signal.getsignal(s) for s in signals.SIGNALS}
        signals.install()
        _sigterm_in(mp, "test")
        with pytest.raises(signals.Interrupted):
            train(compose_cfg([*TINY, *EARLY], output_dir=out))
        for s, handler in saved.items():
            signal.signal(s, handler)
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}
    result = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), f"resume={out}"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert not [p for p in (tmp_path / "outputs").rglob("*") if p.is_file()]
    assert _state(out)["status"] == "finished" and (out / "model" / "config.json").is_file()
    assert f"resuming {out}" in (out / "train.log").read_text()
