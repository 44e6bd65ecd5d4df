"""Shared fixtures: compose the real configs, shrink them, keep everything offline."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, open_dict

from sftlab.utils.setup import setup

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
ASSETS = Path(__file__).resolve().parent / "assets"
TINY_CSV = ASSETS / "tiny_sentiment.csv"

# Offline, quiet, and never a login prompt.
os.environ["HF_HUB_OFFLINE"] = "1"
# An empty hub cache: a model that is only on the hub must fail here, whatever this machine cached.
os.environ["HF_HOME"] = tempfile.mkdtemp(prefix="sftlab-hf-")
os.environ["WANDB_MODE"] = "offline"
os.environ["WANDB_SILENT"] = "true"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
# A fresh data cache per test session: no test reads what an earlier session (or a user run) cached.
os.environ["SFTLAB_CACHE_DIR"] = tempfile.mkdtemp(prefix="sftlab-cache-")
setup()  # as the entry points do: ${run_suffix:} in the composed configs


def compose_cfg(overrides: list[str], output_dir: Path | None = None) -> DictConfig:
    """The real `train` config with overrides, as `python train.py <overrides>` would see it."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    if output_dir is not None:
        with open_dict(cfg):
            cfg.output_dir = str(output_dir)
    return cfg


TINY = [
    "model=tiny_bert",
    "data=files",
    f"data.path={TINY_CSV}",
    "trainer=cpu",
    "trainer.precision=32",
    "trainer.enable_progress_bar=false",
    "logger=csv",
    "trainer.max_epochs=2",  # not auto: 72 rows would get budget.max_epochs (tests/training/test_budget.py runs auto)
]


@pytest.fixture
def tiny_cfg(tmp_path):
    """A tiny-BERT run on the committed 90-row CSV, writing into tmp_path."""

    def make(*extra: str) -> DictConfig:
        return compose_cfg([*TINY, *extra], output_dir=tmp_path / "run")

    return make
