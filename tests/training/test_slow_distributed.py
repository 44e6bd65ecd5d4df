"""2-process DDP (gloo) runs that take minutes on 2 cores: regression and multi-label metrics
against 1 process, every strategy under DDP, and a multirun of DDP jobs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
import torch
from torch.nn import functional as F

from sftlab.inference.predictor import load_predictor
from sftlab.tasks.metrics import multilabel_metrics, regression_metrics
from sftlab.tasks.multilabel import best_threshold
from tests.conftest import ASSETS, ROOT
from tests.helpers.ddp_run import DDP, as_tensor, ddp_run, one_process_outputs, run_train, stored

pytestmark = pytest.mark.slow


def test_ddp_regression_metrics_equal_one_process(tmp_path):
    run = ddp_run(
        tmp_path,
        f"data.path={ASSETS / 'tiny_regression.csv'}",
        "data.label_column=score",
        "data.task=regression",
    )
    metrics = stored(run)
    for split, prefix in (("validation", "val/"), ("test", "test/")):
        frame, outputs = one_process_outputs(run, split)
        preds, target = (
            as_tensor(outputs[:, 0]),
            as_tensor(frame["score"].to_numpy(dtype="float32")),
        )
        expected = regression_metrics().clone(prefix=prefix)(preds, target)
        for key, value in expected.items():
            # Pearson merges per-rank float32 moments: ~1e-4 apart from one pass (seen at r ~ 0)
            tolerance = 1e-3 if key.endswith("pearson") else 1e-5
            assert metrics[key] == pytest.approx(float(value), abs=tolerance), key
    assert metrics["val/loss"] == pytest.approx(metrics["val/mse"], abs=1e-5)


def test_ddp_multilabel_threshold_and_metrics_equal_one_process(tmp_path):
    run = ddp_run(
        tmp_path,
        f"data.path={ASSETS / 'tiny_multilabel.csv'}",
        "data.label_column=topics",
        "data.task=multilabel",
        "data.label_delimiter=|",
        "data.threshold=tune",
    )
    metrics, labels = stored(run), load_predictor(run).labels
    for split, prefix in (("validation", "val/"), ("test", "test/")):
        frame, logits = one_process_outputs(run, split)
        probs = torch.sigmoid(as_tensor(logits))
        target = torch.tensor(
            [[int(x in str(row).split("|")) for x in labels] for row in frame["topics"]]
        )
        if split == "validation":  # tuned on every rank's rows = on the whole split
            assert metrics["test/threshold"] == pytest.approx(best_threshold(probs, target))
        preds = (probs >= metrics["test/threshold"]).int()
        expected = multilabel_metrics(labels).clone(prefix=prefix)(preds, target)
        for key, value in expected.items():
            assert metrics[key] == pytest.approx(float(value), abs=1e-6), key
        if prefix == "val/":
            loss = F.binary_cross_entropy(probs, target.float())
            assert metrics["val/loss"] == pytest.approx(float(loss), abs=1e-5)


def test_every_strategy_trains_under_ddp(tmp_path):
    """head_only (features built by rank 0 and broadcast), top_k, lora and gradual (blocks
    opened within the epoch): 2 steps each with 2 processes; the val metrics equal those of the
    exported weights in 1 process."""
    sweep = tmp_path / "sweep"
    strategies = ["head_only", "top_k", "lora", "gradual"]
    run_train(
        [
            "-m",
            *DDP,
            f"strategy={','.join(strategies)}",
            "trainer.max_epochs=1",
            "data.train_size=32",
            f"hydra.sweep.dir={sweep}",
        ],
        cwd=tmp_path,
        timeout=2400,
    )
    for job, name in enumerate(strategies):
        run = sweep / str(job)
        metrics = stored(run)
        assert metrics["epochs"] == 1, name
        frame, logits = one_process_outputs(run, "validation")
        labels = load_predictor(run).labels
        target = as_tensor([labels.index(x) for x in frame["label"]])
        acc = float((as_tensor(logits).argmax(-1) == target).float().mean())
        assert metrics["val/acc"] == pytest.approx(acc, abs=1e-6), name
    # head-only features: built once, by rank 0, in memory (tiny) and shared over the process group
    assert not (sweep / "0" / "features").exists()


def test_multirun_with_ddp_makes_one_sweep(tmp_path):
    """`python train.py -m trainer=cpu_ddp seed=1,2`: one sweep dir, one job dir per job, one
    summary; the DDP children start no sweep of their own."""
    sweep = tmp_path / "multirun"
    run_train(
        [
            "-m",
            *DDP,
            "seed=1,2",
            "trainer.max_epochs=1",
            "data.train_size=32",
            f"hydra.sweep.dir={sweep}",
        ],
        tmp_path,
        timeout=1800,
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["multirun"]  # no stray outputs/ dir
    jobs = sorted(p.name for p in sweep.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert jobs == ["0", "1"]
    for job, seed in (("0", 1), ("1", 2)):
        assert json.loads((sweep / job / "metrics.json").read_text())["epochs"] == 1
        assert f"seed: {seed}" in (sweep / job / "config.yaml").read_text()
    summary = (sweep / "summary.csv").read_text().splitlines()
    assert len(summary) == 3  # a header and one row per job


@pytest.mark.slow
@pytest.mark.parametrize("output", ["file", "pipe"])
def test_ddp_with_output_not_a_terminal_finishes(tmp_path, output):
    """Piped or redirected, the per-epoch console lines replace the progress bar; reading the
    epoch's metrics is a collective, so every rank must take part (it hung on rank 0 alone)."""
    run = tmp_path / "run"
    args = [
        *DDP,
        "trainer.max_epochs=2",
        "trainer.enable_progress_bar=true",
        f"hydra.run.dir={run}",
    ]
    env = {
        **os.environ,
        "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
    }
    command = [sys.executable, str(ROOT / "train.py"), *args]
    if output == "file":
        log = tmp_path / "log.txt"
        with log.open("w") as out:
            code = subprocess.run(
                command, cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=300
            ).returncode
        text = log.read_text()
    else:
        result = subprocess.run(
            command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
        )
        code, text = result.returncode, result.stdout + result.stderr
    assert code == 0, text[-3000:]
    assert text.count("epoch 2/2") == 1  # rank 0 prints, once per epoch
    assert (run / "metrics.json").is_file()


@pytest.mark.slow
def test_sigterm_to_rank_zero_stops_every_rank(tmp_path):
    """A scheduler's SIGTERM may reach rank 0 only (Lightning starts the other ranks as its
    children): every rank stops at the same step, saves last.ckpt and exits 143."""
    run = tmp_path / "run"
    args = [
        *DDP,
        "trainer.max_epochs=200",
        "trainer.enable_progress_bar=true",
        f"hydra.run.dir={run}",
    ]
    env = {
        **os.environ,
        "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
    }
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "train.py"), *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen = []
    try:
        for line in proc.stdout:  # training is under way once the first epoch line is printed
            seen.append(line)
            if line.startswith("epoch 2/"):
                break
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    output = "".join(seen) + rest
    assert proc.returncode == 143, output[-3000:]
    assert "resume" in output
    assert (run / "checkpoints" / "last.ckpt").is_file()
    leftover = subprocess.run(["pgrep", "-f", str(run)], capture_output=True, text=True)
    assert leftover.stdout.strip() == "", "a rank is still running"
