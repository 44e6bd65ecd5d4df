"""Run dirs as runs leave them, made without training (``resume.plan`` reads no checkpoint)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import torch
from omegaconf import OmegaConf

from sftlab.training.resume import LAST, RUN_FILE, fingerprint
from tests.conftest import TINY, compose_cfg


def tiny(out: Path, *extra: str):
    """The tiny run's config, writing into ``out``."""
    return compose_cfg([*TINY, *extra], output_dir=out)


def unfinished_run(run_dir: Path, age: float = 0.0) -> Path:
    """A run dir as a stopped run leaves it: config.yaml, run.json (interrupted), last.ckpt
    (``age`` seconds old: resume=auto takes the newest)."""
    cfg = tiny(run_dir)
    (run_dir / "checkpoints").mkdir(parents=True)
    torch.save({"epoch": 0, "state_dict": {}}, run_dir / LAST)  # plan() checks that it opens
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
    (run_dir / RUN_FILE).write_text(
        json.dumps({"status": "interrupted", "fingerprint": fingerprint(cfg)})
    )
    stamp = time.time() - age
    os.utime(run_dir / LAST, (stamp, stamp))
    return run_dir
