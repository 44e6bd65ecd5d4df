"""Fine-tune a pretrained language model: `python train.py model=bert strategy=head_only`."""

import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from sftlab.config.checks import check_config, resolve_metric
from sftlab.reporting.sweep import objective, run_in_sweep
from sftlab.training.hydra_ddp import ddp_job
from sftlab.utils.cli import hide_secrets, quote_non_ascii, run_or_exit
from sftlab.utils.secrets import mask_hydra
from sftlab.utils.setup import setup


def checked(cfg: DictConfig) -> bool:
    """The config check, before torch, Lightning and transformers load (seconds, not 15)."""
    mask_hydra(cfg)  # a job that fails the check keeps its .hydra/: no secret in it
    check_config(cfg)
    return True


def train(cfg: DictConfig) -> dict[str, float]:
    from sftlab.run import train as run_training

    return run_training(cfg)


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    hydra_cfg = HydraConfig.get()
    # In a multirun a failed job is logged and scored NaN; the sweep goes on.
    run = run_in_sweep if hydra_cfg.mode == RunMode.MULTIRUN else run_or_exit
    metrics = None
    if run(checked, cfg, hydra_cfg.runtime.output_dir):
        with ddp_job():  # DDP children run this job, not the sweep (see sftlab.training.hydra_ddp)
            metrics = run(train, cfg, hydra_cfg.runtime.output_dir)
    if hydra_cfg.mode != RunMode.MULTIRUN:
        return None  # a sweeper's objective: nothing reads it in a single run
    task = cfg.data.get("task", "classification")
    return objective(metrics, resolve_metric(cfg.get("optimized_metric", "val/f1_macro"), task))


if __name__ == "__main__":
    sys.argv = quote_non_ascii(sys.argv)  # Hydra rejects unquoted non-ASCII values: 评论
    sys.argv = hide_secrets(sys.argv)  # Hydra and W&B write the overrides; the values stay out
    setup()
    main()
