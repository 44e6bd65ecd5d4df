"""Experiment loggers from the ``logger`` config group; W&B never prompts for a login.

The group's files are named entries (``logger=[csv,tensorboard]`` gives ``logger.csv`` and
``logger.tensorboard``), and ``logger._target_=<class>`` adds one more. The CSV logger is always
among them (the run report reads csv/metrics.csv), first. Every logger gets the config without
secrets and every ``stage/metric``; the closing figures and tables are sent by
``sftlab.reporting.logged``.
"""

from __future__ import annotations

import inspect
import logging
import netrc
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf

from sftlab.config.checks import logger_nodes
from sftlab.utils.secrets import masked

log = logging.getLogger(__name__)

CSV_TARGET = "lightning.pytorch.loggers.CSVLogger"
WANDB_TARGET = "lightning.pytorch.loggers.WandbLogger"
MLFLOW_TARGET = "lightning.pytorch.loggers.MLFlowLogger"
# Our keys in conf/logger/wandb.yaml that WandbLogger does not take.
SFTLAB_KEYS = ("offline", "predictions", "model_artifact")


def wandb_logged_in() -> bool:
    """True when W&B has credentials (WANDB_API_KEY, or a netrc entry for its host)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        hosts = netrc.netrc().hosts
    except (OSError, netrc.NetrcParseError):
        return False
    own = urlparse(os.environ.get("WANDB_BASE_URL", "")).hostname  # a self-hosted server
    return any("wandb" in host or host == own for host in hosts)


def make_logger(
    cfg: DictConfig | None,
    save_dir: str | Path,
    run_name: str | None = None,
    group: str | None = None,
    run_id: str | None = None,
) -> list[Any] | bool:
    """The configured loggers, the CSV logger first (added into ``save_dir`` when not chosen);
    False for logger=null. W&B decides its online/offline mode without prompting, and a resumed
    run (``run_id``, kept in the run dir's run.json) continues the same W&B run."""
    nodes = logger_nodes(OmegaConf.to_container(cfg, resolve=True) if cfg is not None else None)
    if not nodes:
        return False
    from lightning.pytorch.loggers import CSVLogger

    csv = [n for n in nodes.values() if n["_target_"] == CSV_TARGET]
    made = [] if csv else [CSVLogger(str(save_dir), name="csv", version="")]
    for node in [*csv, *(n for n in nodes.values() if n["_target_"] != CSV_TARGET)]:
        if node["_target_"] == WANDB_TARGET:
            made.append(_wandb(node, run_name, group, run_id))
            continue
        if node["_target_"] == MLFLOW_TARGET:
            node = {**node, "run_name": node.get("run_name") or run_name}
            if str(node.get("tracking_uri") or "").startswith("file:"):
                # MLflow 3 refuses its file store unless asked; logger.mlflow.tracking_uri=file:... asks.
                os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        elif "save_dir" not in node and _takes(node["_target_"], "save_dir"):
            node = {**node, "save_dir": str(save_dir)}  # logger._target_=...: into the run dir
        made.append(instantiate(node))
    return made


def _takes(target: str, name: str) -> bool:
    return name in inspect.signature(get_class(target)).parameters


def _wandb(node: dict[str, Any], run_name: str | None, group: str | None, run_id: str | None):
    values = dict(node)
    extras = {k: values.pop(k, None) for k in SFTLAB_KEYS}
    offline = extras["offline"]
    if offline is None:
        offline = (
            os.environ.get("WANDB_MODE") in ("offline", "dryrun", "disabled")
            or not wandb_logged_in()
        )
    if offline:
        values["log_model"] = False  # checkpoints are large; upload them from an online run
    values["name"] = values.get("name") or run_name
    values["group"] = values.get("group") or group
    if run_id and not values.get("id"):
        values["id"], values["resume"] = run_id, "allow"
    os.environ.setdefault("WANDB_SILENT", "true")
    Path(values["save_dir"]).mkdir(parents=True, exist_ok=True)
    wandb_logger = instantiate(values, offline=offline)
    wandb_logger.sftlab_options = {**extras, "offline": offline}
    return wandb_logger


def as_list(logger: Any) -> list[Any]:
    if not logger:
        return []
    return list(logger) if isinstance(logger, (list, tuple)) else [logger]


def log_config(logger: Any, cfg: DictConfig) -> None:
    """Every logger gets the resolved config, secrets masked (``sftlab.utils.secrets``)."""
    config = masked(OmegaConf.to_container(cfg, resolve=True))
    for each in as_list(logger):
        each.log_hyperparams(config)


@contextmanager
def held_back(trainer: Any) -> Iterator[list[Any]]:
    """The trainer's loggers, held back while the block evaluates outside fit (a starting-point
    score, the best checkpoint's validation and test). Lightning would log such an evaluation
    as one more epoch of the run's history: a phantom epoch in csv/metrics.csv, curves.png and
    W&B. The block logs the results itself, under keys of their own (``log_outside_fit``)."""
    held = list(trainer.loggers)
    trainer.loggers = []
    try:
        yield held
    finally:
        trainer.loggers = held


def log_outside_fit(held: list[Any], values: dict[str, Any], step: int) -> None:
    """The numbers in ``values`` to each logger at ``step``, in one row with no epoch."""
    numbers = {
        k: float(v)
        for k, v in values.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }
    if not numbers:
        return
    for each in held:
        each.log_metrics(numbers, step=step)
        each.save()
