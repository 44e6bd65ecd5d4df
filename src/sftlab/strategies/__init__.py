"""Fine-tuning strategies: which parameters of a Hugging Face model train.

Each strategy is a small pure function on an ``nn.Module`` that sets ``requires_grad`` (LoRA
returns the PEFT-wrapped model); the optimizer is then built from the trainable parameters.
Configs: ``conf/strategy/*.yaml`` (``apply`` is the function, ``lr`` its default learning rate).
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from sftlab.strategies.gradual import GradualUnfreezing, gradual
from sftlab.strategies.layers import (
    HEAD_PREFIXES,
    depth_from_top,
    find_layers,
    is_head,
    layer_index,
)
from sftlab.strategies.lora import lora, prepare_for_export
from sftlab.utils.errors import SftlabError

__all__ = [
    "HEAD_PREFIXES",
    "GradualUnfreezing",
    "bitfit",
    "count_parameters",
    "depth_from_top",
    "describe",
    "find_layers",
    "full",
    "gradual",
    "head_only",
    "is_head",
    "lora",
    "prepare_for_export",
    "set_trainable",
    "top_k",
]


def set_trainable(model: nn.Module, predicate: Callable[[str], bool]) -> nn.Module:
    """Train exactly the parameters whose name satisfies ``predicate``."""
    for name, param in model.named_parameters():
        param.requires_grad_(bool(predicate(name)))
    return model


def _require_head(model: nn.Module, strategy: str) -> None:
    if not any(p.requires_grad for n, p in model.named_parameters() if is_head(n)):
        raise SftlabError(
            f"strategy={strategy} found no head parameters in {type(model).__name__} "
            f"(looked for modules named {', '.join(HEAD_PREFIXES)})"
        )


def full(model: nn.Module) -> nn.Module:
    """Every parameter trains."""
    return set_trainable(model, lambda name: True)


def head_only(model: nn.Module) -> nn.Module:
    """Only the task head trains; the pretrained body is frozen. With ``strategy.cache_features``
    the training loop (``sftlab.training.features``) runs the body once and trains the head on its output."""
    set_trainable(model, is_head)
    _require_head(model, "head_only")
    return model


def top_k(model: nn.Module, k: int = 2) -> nn.Module:
    """The last ``k`` transformer blocks, anything above them (final norm, pooler) and the head."""
    prefix, n_layers = find_layers(model)
    if not 0 <= k <= n_layers:
        raise SftlabError(
            f"strategy.k must be in [0, {n_layers}] for this model ({n_layers} blocks), got {k}"
        )

    def trains(name: str) -> bool:
        depth = depth_from_top(name, prefix, n_layers)
        return depth <= k and layer_index(name, prefix) is not None or depth == 0

    set_trainable(model, trains)
    _require_head(model, "top_k")
    return model


def bitfit(model: nn.Module) -> nn.Module:
    """Every bias term plus the head (BitFit, Ben Zaken et al. 2022)."""
    set_trainable(model, lambda name: name.endswith(".bias") or name == "bias" or is_head(name))
    _require_head(model, "bitfit")
    return model


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, total


def describe(model: nn.Module) -> str:
    trainable, total = count_parameters(model)
    return f"trainable params: {trainable:,} of {total:,} ({100 * trainable / total:.2f}%)"
