"""Never lose a run: a killed or stopped run resumes to the result of an uninterrupted one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from sftlab import train
from sftlab.training import resume
from sftlab.utils.errors import SftlabError
from tests.conftest import ROOT, TINY, compose_cfg

# fp32 on the CPU, 3 epochs of 9 steps, last.ckpt every 4 steps: step 13 is mid-epoch 2.
RUN = [
    "trainer.max_epochs=3",
    "data.batch_size=8",
    "strategy.lr=3e-3",
    "checkpoint.every_n_steps=4",
]
PAUSE_AT = 13


def _start(out: Path, seconds: float, *extra: str, step: int = PAUSE_AT) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "tests" / "helpers" / "stoppable_run.py"),
            str(out),
            str(step),
            str(seconds),
            *RUN,
            *extra,
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_pause(proc: subprocess.Popen, out: Path, timeout: float = 600) -> None:
    marker = Path(f"{out}.paused")
    deadline = time.monotonic() + timeout
    while not marker.exists():
        if proc.poll() is not None:
            pytest.fail(f"the run ended before its pause: {proc.stderr.read()[-2000:]}")
        assert time.monotonic() < deadline, "the run never reached the pause"
        time.sleep(0.1)


def _test_metrics(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k.startswith(("test/", "val/", "best_"))}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("whole") / "run"
    return out, train(compose_cfg([*TINY, *RUN], output_dir=out))


def _assert_same(resumed: dict, whole: dict, resumed_dir: Path, whole_dir: Path) -> None:
    """The same test metrics, and the same final weights and optimizer state (the best
    checkpoint may predate the interruption; the last one never does)."""
    a, b = _test_metrics(resumed), _test_metrics(whole)
    assert a.keys() == b.keys() and len(a) > 10
    for key in a:
        assert a[key] == pytest.approx(b[key], abs=1e-6), key
    last_a, last_b = (
        torch.load(d / "checkpoints" / "last.ckpt", weights_only=True)
        for d in (resumed_dir, whole_dir)
    )
    assert last_a["global_step"] == last_b["global_step"] == 27
    for name, weight in last_b["state_dict"].items():
        assert torch.allclose(last_a["state_dict"][name], weight, rtol=0, atol=1e-6), name
    moments = [s["exp_avg"] for s in last_b["optimizer_states"][0]["state"].values()]
    resumed_moments = [s["exp_avg"] for s in last_a["optimizer_states"][0]["state"].values()]
    assert all(
        torch.allclose(x, y, rtol=0, atol=1e-6)
        for x, y in zip(resumed_moments, moments, strict=True)
    )


def _assert_same_log(resumed_dir: Path, whole_dir: Path) -> None:
    """csv/metrics.csv holds the rows of both sessions, each step once, as an uninterrupted run's
    does (Lightning's CSVLogger alone deletes the first session's rows on resume)."""
    resumed, whole = (pd.read_csv(d / "csv" / "metrics.csv") for d in (resumed_dir, whole_dir))
    assert resumed["step"].min() < PAUSE_AT < resumed["step"].max()
    assert list(resumed["step"]) == list(whole["step"])
    for key in ("val/acc", "val/loss"):
        assert resumed[key].dropna().to_numpy() == pytest.approx(
            whole[key].dropna().to_numpy(), abs=1e-6
        ), key


def test_sigkill_mid_epoch_then_resume_equals_an_uninterrupted_run(tmp_path, uninterrupted):
    out = tmp_path / "run"
    proc = _start(out, 120)
    _wait_for_pause(proc, out)
    # While it trains, its dir is locked: resume=<dir> is refused, resume=auto skips it.
    assert json.loads((out / "run.lock").read_text())["pid"] == proc.pid
    with pytest.raises(SftlabError, match=rf"resume={out}: that run is in use by pid {proc.pid}"):
        resume.plan(compose_cfg([*TINY, f"resume={out}"], output_dir=tmp_path / "other"))
    auto = [*TINY, *RUN, "resume=auto", f"runs_dir={tmp_path}"]
    fresh = resume.plan(compose_cfg(auto, output_dir=tmp_path / "auto"))
    assert fresh.ckpt is None and fresh.out == tmp_path / "auto"
    fresh.release()
    os.kill(proc.pid, signal.SIGKILL)  # no handler runs: what is on disk is all there is
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert (out / "checkpoints" / "last.ckpt").is_file() and not (out / "metrics.json").exists()
    assert (out / "run.lock").is_file()  # left behind, stale: its pid is gone
    assert json.loads((out / "run.json").read_text())["status"] == "running"

    resumed = train(compose_cfg([*TINY, f"resume={out}"], output_dir=tmp_path / "other"))
    _assert_same(resumed, uninterrupted[1], out, uninterrupted[0])
    state = json.loads((out / "run.json").read_text())
    assert state["status"] == "finished" and state["resumed"] == 1
    assert (out / "model" / "config.json").is_file()  # continued in its own dir
    assert not (out / "run.lock").exists()  # released at the end
    _assert_same_log(out, uninterrupted[0])
    assert not (tmp_path / "other").exists()


def test_sigterm_saves_says_how_to_resume_and_exits_143(tmp_path, uninterrupted):
    out = tmp_path / "run"
    proc = _start(out, 1.5)
    _wait_for_pause(proc, out)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err[-2000:]
    line = err.strip().splitlines()[-1]
    assert line == (
        f"interrupted by SIGTERM: saved {out / 'checkpoints' / 'last.ckpt'}; "
        f"resume with: python train.py resume={out}"
    )
    assert json.loads((out / "run.json").read_text())["status"] == "interrupted"
    assert not (out / "metrics.json").exists() and not list(out.glob(".*.tmp"))
    assert not (out / "run.lock").exists()  # released on SIGTERM

    # resume=auto finds it (same config, unfinished) under runs_dir
    resumed = train(
        compose_cfg(
            [*TINY, *RUN, "resume=auto", f"runs_dir={tmp_path}"], output_dir=tmp_path / "new"
        )
    )
    _assert_same(resumed, uninterrupted[1], out, uninterrupted[0])
    _assert_same_log(out, uninterrupted[0])


@pytest.mark.slow
def test_sigterm_in_an_epochs_last_step_stops_after_its_validation(tmp_path, uninterrupted):
    """Saved right after the last step, the checkpoint would come before the epoch's validation,
    which Lightning skips on resume: the stop waits for the epoch-end checkpoint."""
    out = tmp_path / "run"
    proc = _start(out, 1.5, step=8)  # the ninth and last training step of the first epoch
    _wait_for_pause(proc, out)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 143, err[-2000:]
    last = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == 9
    best = next(v for v in last["callbacks"].values() if v.get("monitor") == "val/f1_macro")
    assert best["best_model_score"] is not None  # the epoch's validation ran

    resumed = train(compose_cfg([*TINY, f"resume={out}"], output_dir=tmp_path / "other"))
    _assert_same(resumed, uninterrupted[1], out, uninterrupted[0])


def test_resume_auto_starts_fresh_without_an_unfinished_run(tmp_path, uninterrupted):
    whole_dir = uninterrupted[0]
    cfg = compose_cfg(
        [*TINY, "trainer.fast_dev_run=true", "resume=auto", f"runs_dir={whole_dir.parent}"],
        output_dir=tmp_path / "run",
    )
    with pytest.raises(SftlabError, match="fast_dev_run saves no checkpoints"):
        train(cfg)
    # the finished run is never picked: resume=auto starts a new run
    plan = resume.plan(
        compose_cfg(
            [*TINY, *RUN, "resume=auto", f"runs_dir={whole_dir.parent}"],
            output_dir=tmp_path / "run",
        )
    )
    assert plan.ckpt is None and plan.out == tmp_path / "run"
    plan.release()
    assert not (whole_dir / "run.lock").exists()  # an uninterrupted run released its lock


def _session(log_dir: Path, rows: list[dict]) -> None:
    """What one session's CSVLogger leaves: rows in its own sorted key order."""
    from lightning.pytorch.loggers import CSVLogger

    logger = CSVLogger(str(log_dir.parent), name=log_dir.name, version="")
    for row in rows:
        logger.log_metrics({k: v for k, v in row.items() if k != "step"}, step=row["step"])
        logger.save()


def test_merged_log_keeps_columns_aligned_when_sessions_log_different_keys(tmp_path):
    """The resumed session logs a key the first never did and misses one it did: after the
    merge, rows the writer appends (the test metrics) still land under their own names."""
    from lightning.pytorch.loggers import CSVLogger

    from sftlab.training import lifecycle
    from sftlab.training.resume import RunPlan

    log_dir = tmp_path / "csv"
    _session(log_dir, [{"step": 3, "a": 1.0, "z": 9.0}, {"step": 8, "a": 2.0, "z": 8.0}])
    run = RunPlan(cfg=None, out=tmp_path, ckpt=tmp_path / "last.ckpt")
    torch.save({"global_step": 5}, run.ckpt)
    logger = CSVLogger(str(tmp_path), name="csv", version="")
    trainer = type("T", (), {"loggers": [logger], "is_global_zero": True})()
    lifecycle.keep_csv_history(trainer, run)  # before the writer starts (it would delete the file)
    logger.log_metrics({"b": 5.0}, step=6)  # the resumed session: a new key, from step 5 on
    logger.save()
    lifecycle._restore_csv_history(run)
    logger.log_metrics({"test/acc": 0.5}, step=9)
    logger.save()
    frame = pd.read_csv(log_dir / "metrics.csv")
    assert list(frame["step"]) == [3, 6, 9]  # step 8 came after the checkpoint: logged again
    assert frame["a"].tolist()[0] == 1.0 and frame["z"].tolist()[0] == 9.0
    assert frame["b"].tolist()[1] == 5.0 and frame["test/acc"].tolist()[2] == 0.5
    assert frame.iloc[2].drop(["step", "test/acc"]).isna().all()
    assert not (log_dir / "metrics.before-resume.csv").exists()


def test_a_resume_killed_before_merging_keeps_the_first_sessions_rows(tmp_path):
    """Killed resume: both files are on disk, and the killed session logged a starting-point
    row at step 0 before fit. The next resume merges at the step run.json noted, not at 0."""
    from sftlab.training import lifecycle

    log_dir = tmp_path / "csv"
    log_dir.mkdir()
    pd.DataFrame({"step": [4, 8, 12], "a": [1.0, 2.0, 3.0]}).to_csv(
        log_dir / "metrics.before-resume.csv", index=False
    )
    pd.DataFrame({"step": [0, 10], "a": [0.0, 2.5]}).to_csv(log_dir / "metrics.csv", index=False)
    lifecycle._merge_csv(log_dir / "metrics.before-resume.csv", log_dir / "metrics.csv", 10)
    frame = pd.read_csv(log_dir / "metrics.csv")
    assert list(frame["step"]) == [4, 8, 10] and list(frame["a"]) == [1.0, 2.0, 2.5]
    # no known step (a checkpoint without global_step): every row of both is kept
    pd.DataFrame({"step": [4], "a": [1.0]}).to_csv(
        log_dir / "metrics.before-resume.csv", index=False
    )
    lifecycle._merge_csv(log_dir / "metrics.before-resume.csv", log_dir / "metrics.csv", None)
    assert list(pd.read_csv(log_dir / "metrics.csv")["step"]) == [4, 4, 8, 10]
