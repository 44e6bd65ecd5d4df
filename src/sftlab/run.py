"""``train(cfg) -> dict[str, float]``: one fine-tuning run, composed from the Hydra config."""

from __future__ import annotations

import logging

from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig

from sftlab.config.checks import check_config
from sftlab.recipes import causal_lm, classifier
from sftlab.training import lifecycle, resume
from sftlab.utils import secrets
from sftlab.utils.setup import bound_kernel_cache, one_line_per_event, quiet_known_warnings

log = logging.getLogger("sftlab.run")


def train(cfg: DictConfig) -> dict[str, float]:
    """Fine-tune, test the best checkpoint, export ``model/``; return the final metrics."""
    bound_kernel_cache()  # before the first matmul: oneDNN's per-shape cache stays small
    quiet_known_warnings()  # the warnings sftlab's runs raise although nothing is wrong
    one_line_per_event()  # Lightning's lines once, without its adverts
    secrets.mask_hydra(cfg)  # Hydra wrote the config, secrets included, before this ran
    check_config(cfg)  # before any data is read or file written
    plan = resume.plan(cfg)  # a new run dir, or the resumed run's own dir and config; locked
    if plan.ckpt is None and not cfg.get("resume") and rank_zero_only.rank == 0:
        log.info("run dir: %s", plan.out)  # a resumed run's line says where it resumes
    recipe = causal_lm if plan.cfg.data.get("task") == "generation" else classifier
    with lifecycle.session(plan):  # unlocked at the end, on an error and on a signal
        return recipe.run(plan.cfg, plan)
