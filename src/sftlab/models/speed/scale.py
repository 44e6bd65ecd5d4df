"""Switches users expect at scale: gradient checkpointing and ``torch.compile`` of the model
(``model.gradient_checkpointing``, ``model.compile``)."""

from __future__ import annotations

import logging

from torch import nn

from sftlab.utils.errors import SftlabError

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
