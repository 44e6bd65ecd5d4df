"""Helpers for the DDP tests: run ``train.py`` with 2 gloo processes (``trainer=cpu_ddp``), and
the 1-process metrics of the model that run exported (the best checkpoint's weights)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from sftlab.inference.predictor import load_predictor, raw_outputs
from tests.conftest import ROOT, TINY

# The tiny run under DDP: eval batches of 4 give the 2 ranks different numbers of batches on the
# 9-row validation and test splits (5 and 4 rows), the case where Lightning's sampler pads.
DDP = [o for o in TINY if not o.startswith("trainer=")] + [
    "trainer=cpu_ddp",
    "trainer.max_epochs=4",
    "data.batch_size=8",
    "strategy.lr=3e-3",  # the tiny model learns something: predictions differ between rows
    "data.eval_batch_size=4",
]


def run_train(args: list[str], cwd: Path, timeout: int = 540) -> subprocess.CompletedProcess:
    """``python train.py <args>`` in ``cwd`` (offline, the worktree's sources first)."""
    env = {
        **os.environ,
        "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
    }
    env.pop("LOCAL_RANK", None)
    result = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def ddp_run(tmp_path: Path, *extra: str) -> Path:
    """A finished 2-process run dir."""
    run = tmp_path / "run"
    run_train([*DDP, *extra, f"hydra.run.dir={run}"], cwd=tmp_path)
    return run


def one_process_outputs(run: Path, split: str) -> tuple[pd.DataFrame, np.ndarray]:
    """(rows of ``<run>/data/<split>.csv``, the exported model's raw outputs on them), computed
    here in one process."""
    predictor = load_predictor(run, device="cpu")
    frame = pd.read_csv(run / "data" / f"{split}.csv", keep_default_na=False)
    text_column = predictor.meta.get("text_column", "text")
    return frame, raw_outputs(predictor, frame[text_column].astype(str).tolist(), batch_size=7)


def stored(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


def as_tensor(values) -> torch.Tensor:
    return torch.as_tensor(np.asarray(values))
