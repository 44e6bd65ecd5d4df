"""Switches users expect at scale: gradient checkpointing and ``torch.compile`` of the model
(``model.gradient_checkpointing``, ``model.compile``), early stopping on the monitored metric
(``early_stopping.patience``), and a one-line error for a Lightning strategy whose package is
missing (``trainer=deepspeed``)."""

from __future__ import annotations

import importlib.util
import logging
from typing import TYPE_CHECKING, Any

from sftlab.errors import SftlabError

if TYPE_CHECKING:  # imported where used: the config check (check_strategy) runs before torch
    from lightning.pytorch.callbacks import EarlyStopping
    from torch import nn

log = logging.getLogger(__name__)


def gradient_checkpointing(model: nn.Module, enabled: bool) -> nn.Module:
    """Recompute activations in the backward pass instead of keeping them: less memory, about a
    third more compute. Non-reentrant, so it also works when the embeddings are frozen."""
    if not enabled:
        return model
    for each in model.modules():  # the model itself, or the backbone inside a pooled head
        if getattr(each, "supports_gradient_checkpointing", False):
            if hasattr(each, "activation_checkpointing_enable"):  # transformers 5's name
                each.activation_checkpointing_enable({"use_reentrant": False})
            else:
                each.gradient_checkpointing_enable({"use_reentrant": False})
            log.info("gradient checkpointing on in %s", type(each).__name__)
            return model
    raise SftlabError(
        f"model.gradient_checkpointing=true: {type(model).__name__} does not support it; "
        f"set model.gradient_checkpointing=false"
    )


def compiled(model: nn.Module, enabled: bool) -> nn.Module:
    """``torch.compile`` in place (``nn.Module.compile``): the module keeps its class and its
    parameter names, so checkpoints and exports carry no ``_orig_mod.`` prefix."""
    if enabled:
        model.compile()
        log.info("model.compile: %s compiled on its first batch", type(model).__name__)
    return model


def early_stopping(cfg: Any, monitor: str, mode: str) -> list[EarlyStopping]:
    """``[EarlyStopping]`` on the monitored metric when ``early_stopping.patience`` is set, else []."""
    settings = cfg.get("early_stopping") or {}
    patience = settings.get("patience")
    if patience is None:
        return []
    if not isinstance(patience, int) or patience < 1:
        raise SftlabError(
            f"early_stopping.patience must be a whole number >= 1 (or null: off), got {patience!r}"
        )
    from lightning.pytorch.callbacks import EarlyStopping

    return [
        EarlyStopping(
            monitor=monitor,
            mode=mode,
            patience=patience,
            min_delta=float(settings.get("min_delta", 0.0)),
            verbose=True,
        )
    ]


# Lightning strategies that need a package sftlab does not install.
NEEDS = {"deepspeed": "deepspeed"}


def check_strategy(trainer_cfg: Any) -> None:
    """Fail in one line when ``trainer.strategy`` needs a package that is not installed."""
    strategy = trainer_cfg.get("strategy")
    text = str(strategy.get("_target_", "") if hasattr(strategy, "get") else strategy or "")
    for word, package in NEEDS.items():
        if word in text.lower() and importlib.util.find_spec(package) is None:
            raise SftlabError(
                f"trainer.strategy={word} needs the {package} package, which is not installed: "
                f"pip install {package} (with a CUDA toolkit), or use trainer=ddp or trainer=fsdp"
            )
