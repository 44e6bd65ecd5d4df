"""trainer.max_epochs=auto: the number of epochs follows the size of the training split."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import lightning.pytorch as L
import pytest
import yaml
from omegaconf import OmegaConf

from sftlab import train
from sftlab.training import budget


@pytest.mark.parametrize(
    "rows, epochs",
    [
        (11_536, 2),  # the airline tweets: two epochs, as before the rule
        (5_733, 4),  # Reuters R52's training split: 180 steps per epoch
        (100_000, 1),  # a large set: one pass is already 3,125 steps
        (200, 10),  # a few hundred rows: capped at budget.max_epochs
    ],
)
def test_epochs_follow_the_data_size(rows, epochs):
    per_epoch = budget.steps_per_epoch(rows, batch_size=32, world_size=1, accumulate=1)
    assert budget.epochs_for(per_epoch, min_steps=700, max_epochs=10) == epochs


def test_steps_per_epoch_counts_processes_and_accumulation():
    assert budget.steps_per_epoch(1000, 32, 1, 1) == 32
    assert budget.steps_per_epoch(1000, 32, 2, 1) == 16
    assert budget.steps_per_epoch(1000, 32, 2, 4) == 4
    assert budget.steps_per_epoch(1, 32, 8, 8) == 1


def test_auto_is_resolved_into_the_trainer_and_the_config(caplog):
    cfg = OmegaConf.create(
        {"trainer": {"max_epochs": "auto"}, "budget": {"min_steps": 100, "max_epochs": 20}}
    )
    trainer = L.Trainer(**budget.trainer_overrides(cfg), logger=False, enable_progress_bar=False)
    with caplog.at_level(logging.INFO, logger="sftlab.training.budget"):
        budget.apply(trainer, cfg, train_rows=640, batch_size=32)
    assert trainer.max_epochs == 5 and cfg.trainer.max_epochs == 5
    (line,) = [r.getMessage() for r in caplog.records if r.name == budget.__name__]
    assert "trainer.max_epochs=auto -> 5 epochs, 100 optimizer steps" in line
    assert "640 training rows / batch 32 = 20 steps per epoch" in line


def test_a_number_is_kept():
    cfg = OmegaConf.create({"trainer": {"max_epochs": 3}, "budget": {"min_steps": 700}})
    assert budget.trainer_overrides(cfg) == {}
    trainer = L.Trainer(max_epochs=3, logger=False, enable_progress_bar=False)
    budget.apply(trainer, cfg, train_rows=10, batch_size=32)
    assert trainer.max_epochs == 3 and cfg.trainer.max_epochs == 3


def test_a_run_resolves_auto_and_records_the_number(tiny_cfg):
    cfg = tiny_cfg(
        "trainer.max_epochs=auto", "budget.min_steps=6", "data.batch_size=32", "export=false"
    )
    train(cfg)
    out = Path(cfg.output_dir)
    assert (
        yaml.safe_load((out / "config.yaml").read_text())["trainer"]["max_epochs"] == 2
    )  # 72 rows: 3 steps
    assert json.loads((out / "metrics.json").read_text())["epochs"] == 2
