"""Optimizer parameter groups: weight decay off for biases and norms, and layer-wise
learning-rate decay (``optimizer.layer_decay``: lr * decay^depth, depth 0 = head, 1 = top
block, ..., embeddings deepest; Clark et al. 2020, ELECTRA)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from sftlab.errors import SftlabError
from sftlab.strategies.gradual import UNFREEZE_LATER
from sftlab.strategies.layers import depth_from_top, find_layers

NO_DECAY = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")


def param_groups(model: nn.Module, layer_decay: float | None = None) -> list[dict[str, Any]]:
    """Groups for ``optimizer(groups)``; each carries ``lr_scale`` for ``apply_lr_scale``."""
    if layer_decay is not None and not 0 < layer_decay <= 1:
        raise SftlabError(f"optimizer.layer_decay must be in (0, 1] or null, got {layer_decay}")
    take_frozen = getattr(model, UNFREEZE_LATER, False)
    prefix, n_layers = "", 0
    if layer_decay is not None:
        try:
            prefix, n_layers = find_layers(model)
        except SftlabError:
            raise SftlabError(
                f"optimizer.layer_decay={layer_decay} needs transformer blocks to decay over: use it with "
                f"strategy=full or top_k, or set optimizer.layer_decay=null"
            ) from None
    groups: dict[tuple[int, bool], list[torch.nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if not (param.requires_grad or take_frozen):
            continue
        depth = depth_from_top(name, prefix, n_layers) if layer_decay is not None else 0
        no_decay = any(k in name for k in NO_DECAY)
        groups.setdefault((depth, no_decay), []).append(param)
    out = []
    for (depth, no_decay), params in sorted(groups.items()):
        group: dict[str, Any] = {"params": params, "lr_scale": (layer_decay or 1.0) ** depth}
        if no_decay:
            group["weight_decay"] = 0.0
        out.append(group)
    return out


def apply_lr_scale(optimizer: torch.optim.Optimizer) -> torch.optim.Optimizer:
    """Scale each group's lr by its ``lr_scale`` (before a scheduler records the initial lrs)."""
    for group in optimizer.param_groups:
        group["lr"] = group["lr"] * group.pop("lr_scale", 1.0)
    return optimizer


def optimizer_from_config(optimizer_cfg: Any) -> tuple[Any, float | None]:
    """(partial optimizer, layer_decay) from the ``optimizer`` node: ``layer_decay`` is sftlab's
    own key, read here and kept away from the optimizer class."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    values = (
        OmegaConf.to_container(optimizer_cfg, resolve=True)
        if OmegaConf.is_config(optimizer_cfg)
        else dict(optimizer_cfg)
    )
    layer_decay = values.pop("layer_decay", None)
    return instantiate(values), layer_decay


def configure_optimizers(
    model: nn.Module,
    optimizer_fn: Any,
    scheduler_fn: Any | None,
    num_training_steps: int,
    layer_decay: float | None = None,
) -> dict[str, Any]:
    """What a LightningModule's ``configure_optimizers`` returns: the partial optimizer completed
    with the trainable parameter groups, and the per-step schedule."""
    optimizer = apply_lr_scale(optimizer_fn(param_groups(model, layer_decay)))
    if scheduler_fn is None:
        return {"optimizer": optimizer}
    scheduler = scheduler_fn(optimizer, num_training_steps=num_training_steps)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


class OptimizerFromConfig:
    """``configure_optimizers`` for a LightningModule that holds ``model``, ``optimizer_fn``,
    ``scheduler_fn`` and ``layer_decay`` (the classifier and causal-LM systems)."""

    def configure_optimizers(self) -> dict[str, Any]:
        return configure_optimizers(
            self.model,
            self.optimizer_fn,
            self.scheduler_fn,
            int(self.trainer.estimated_stepping_batches),
            self.layer_decay,
        )
