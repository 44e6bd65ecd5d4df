"""One short tiny-BERT run shared by the predict, export and serve tests (trained once per session)."""

from __future__ import annotations

import shutil
from pathlib import Path

from sftlab import train
from tests.conftest import TINY, compose_cfg

_CACHE: dict[str, Path] = {}


def trained_run(tmp_path_factory) -> Path:
    """A finished run dir (fp32, 5 epochs on the 72 training rows): model/, data/, metrics.json."""
    if "run" not in _CACHE:
        out = tmp_path_factory.mktemp("tiny-run")
        cfg = compose_cfg(
            [*TINY, "trainer.max_epochs=5", "data.batch_size=8", "strategy.lr=3e-3"], output_dir=out
        )
        train(cfg)
        _CACHE["run"] = out
    return _CACHE["run"]


def copy_run(run: Path, target: Path) -> Path:
    """A private copy a test may break (remove the model, edit the config)."""
    shutil.copytree(run, target, ignore=shutil.ignore_patterns("checkpoints", "csv"))
    return target
