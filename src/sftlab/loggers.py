"""Experiment loggers from the ``logger`` config group; W&B never prompts for a login."""

from __future__ import annotations

import logging
import netrc
import os
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)

WANDB_TARGET = "lightning.pytorch.loggers.WandbLogger"


def wandb_logged_in() -> bool:
    """True when W&B has credentials (WANDB_API_KEY, or a netrc entry for its host)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        from wandb.sdk.lib.wbauth import read_netrc_auth

        import wandb

        host = wandb.setup().settings.base_url
        return bool(read_netrc_auth(host=host))
    except Exception:  # an older or newer wandb layout: read ~/.netrc ourselves
        try:
            hosts = netrc.netrc().hosts
        except (OSError, netrc.NetrcParseError):
            return False
        return any("wandb" in host for host in hosts)


def make_logger(cfg: DictConfig | None, run_name: str | None = None) -> Any:
    """Instantiate the configured logger; decide W&B's online/offline mode without prompting."""
    if cfg is None or cfg.get("_target_") is None:
        return False
    if cfg["_target_"] != WANDB_TARGET:
        return instantiate(cfg)
    values = OmegaConf.to_container(cfg, resolve=True)
    offline = values.pop("offline", None)
    if offline is None:
        offline = os.environ.get("WANDB_MODE") == "offline" or not wandb_logged_in()
    if offline:
        values["log_model"] = False  # nothing can be uploaded offline
        log.info("W&B runs offline (not logged in); upload later with `wandb sync %s/wandb`", values.get("save_dir"))
    values["name"] = values.get("name") or run_name
    os.environ.setdefault("WANDB_SILENT", "true")
    return instantiate(values, offline=offline)
