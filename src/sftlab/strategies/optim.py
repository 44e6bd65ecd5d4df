"""Optimizer parameter groups: weight decay off for biases and norms, and layer-wise
learning-rate decay (``optimizer.layer_decay``: lr * decay^depth, depth 0 = head, 1 = top
block, ..., embeddings deepest; Clark et al. 2020, ELECTRA)."""

from __future__ import annotations

import functools
import logging
from typing import Any

import torch
from lightning.pytorch.plugins.precision import MixedPrecision, Precision
from lightning.pytorch.strategies import FSDPStrategy
from lightning.pytorch.utilities import GradClipAlgorithmType
from torch import nn

from sftlab.strategies.gradual import UNFREEZE_LATER
from sftlab.strategies.layers import depth_from_top, find_layers, is_head
from sftlab.utils.errors import SftlabError

log = logging.getLogger(__name__)

NO_DECAY = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")


def param_groups(
    model: nn.Module, layer_decay: float | None = None, head_lr_scale: float = 1.0
) -> list[dict[str, Any]]:
    """Groups for ``optimizer(groups)``; each carries ``lr_scale`` for ``apply_lr_scale``: the
    layer decay's, times ``head_lr_scale`` for the task head (``optimizer.head_lr_scale``)."""
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
    trained = [n for n, p in model.named_parameters() if p.requires_grad or take_frozen]
    if all(is_head(n) for n in trained):  # head-only: its own lr is the lr; nothing to speed up
        head_lr_scale = 1.0
    groups: dict[tuple[int, bool, bool], list[torch.nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if not (param.requires_grad or take_frozen):
            continue
        depth = depth_from_top(name, prefix, n_layers) if layer_decay is not None else 0
        no_decay = any(k in name for k in NO_DECAY)
        head = head_lr_scale != 1.0 and is_head(name)
        groups.setdefault((depth, no_decay, head), []).append(param)
    out = []
    for (depth, no_decay, head), params in sorted(groups.items()):
        scale = (layer_decay or 1.0) ** depth * (head_lr_scale if head else 1.0)
        group: dict[str, Any] = {"params": params, "lr_scale": scale}
        if no_decay:
            group["weight_decay"] = 0.0
        out.append(group)
    return out


def apply_lr_scale(optimizer: torch.optim.Optimizer) -> torch.optim.Optimizer:
    """Scale each group's lr by its ``lr_scale`` (before a scheduler records the initial lrs)."""
    for group in optimizer.param_groups:
        group["lr"] = group["lr"] * group.pop("lr_scale", 1.0)
    return optimizer


def optimizer_from_config(optimizer_cfg: Any) -> tuple[Any, float | None, float]:
    """(partial optimizer, layer_decay, head_lr_scale) from the ``optimizer`` node: those two
    are sftlab's own keys, read here and kept away from the optimizer class."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    values = (
        OmegaConf.to_container(optimizer_cfg, resolve=True)
        if OmegaConf.is_config(optimizer_cfg)
        else dict(optimizer_cfg)
    )
    layer_decay = values.pop("layer_decay", None)
    head_lr_scale = values.pop("head_lr_scale", None) or 1.0
    return instantiate(values), layer_decay, float(head_lr_scale)


def configure_optimizers(
    model: nn.Module,
    optimizer_fn: Any,
    scheduler_fn: Any | None,
    num_training_steps: int,
    layer_decay: float | None = None,
    head_lr_scale: float = 1.0,
) -> dict[str, Any]:
    """What a LightningModule's ``configure_optimizers`` returns: the partial optimizer completed
    with the trainable parameter groups, and the per-step schedule."""
    optimizer = apply_lr_scale(optimizer_fn(param_groups(model, layer_decay, head_lr_scale)))
    if scheduler_fn is None:
        return {"optimizer": optimizer}
    scheduler = scheduler_fn(optimizer, num_training_steps=num_training_steps)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def _unscales_in_step(optimizer: Any) -> bool:
    """Whether ``step()`` unscales the gradients itself (fused AdamW): torch's own flag, the one
    Lightning reads."""
    return bool(getattr(optimizer, "_step_supports_amp_scaling", False))


class OptimizerFromConfig:
    """``configure_optimizers`` for a LightningModule that holds ``model``, ``optimizer_fn``,
    ``scheduler_fn`` and ``layer_decay`` (the classifier and causal-LM systems), and gradient
    clipping that works with the fused AdamW default under every precision."""

    def configure_optimizers(self) -> dict[str, Any]:
        optimizer_fn = self.optimizer_fn
        keywords = getattr(optimizer_fn, "keywords", {})
        if keywords.get("fused") and getattr(self.trainer.precision_plugin, "scaler", None):
            # 16-mixed: a fused step unscales inside step(), after clipping has run on the
            # scaled gradients. Lightning refuses that; the loop-based AdamW is exact there.
            log.info("optimizer.fused: off under %s (a loss scaler)", self.trainer.precision)
            optimizer_fn = functools.partial(optimizer_fn, fused=False)
        return configure_optimizers(
            self.model,
            optimizer_fn,
            self.scheduler_fn,
            int(self.trainer.estimated_stepping_batches),
            self.layer_decay,
            getattr(self, "head_lr_scale", 1.0),
        )

    def configure_gradient_clipping(
        self,
        optimizer: torch.optim.Optimizer,
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str | None = None,
    ) -> None:
        """Two cases Lightning refuses and sftlab clips itself:

        - FSDP: the norm of sharded gradients is FSDP's own ``clip_grad_norm_`` on the root
          module (torch's documented way); Lightning's FSDP plugin has no norm clipping.
        - bf16-mixed with fused AdamW: no loss scaler, so the gradients are true ones and clip
          as in fp32; Lightning's mixed-precision plugin refuses any fused optimizer all the same.
        """
        plugin = self.trainer.precision_plugin
        algorithm = GradClipAlgorithmType(gradient_clip_algorithm or "norm")
        if (
            gradient_clip_val
            and algorithm == GradClipAlgorithmType.NORM
            and isinstance(self.trainer.strategy, FSDPStrategy)
        ):
            self.trainer.strategy.model.clip_grad_norm_(gradient_clip_val)
            return
        if (
            gradient_clip_val
            and isinstance(plugin, MixedPrecision)
            and plugin.scaler is None
            and _unscales_in_step(optimizer)
        ):
            Precision.clip_gradients(plugin, optimizer, gradient_clip_val, algorithm)
            return
        super().configure_gradient_clipping(  # type: ignore[misc]
            optimizer, gradient_clip_val, gradient_clip_algorithm
        )
