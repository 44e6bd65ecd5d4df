"""Fine-tuning strategies: which parameters of a Hugging Face model train.

Each strategy is a pure function on an ``nn.Module`` that sets ``requires_grad``;
the optimizer is then built from the trainable parameters only.
"""

from __future__ import annotations

from torch import nn

# Task-head modules across Hugging Face sequence-classification models:
# BERT pooler + classifier, DistilBERT pre_classifier + classifier, RoBERTa classifier
# (dense + out_proj), decoder models' score.
HEAD_PREFIXES = ("classifier", "pre_classifier", "score", "pooler")


def is_head(param_name: str) -> bool:
    """True for a parameter of the task head (and the BERT pooler that feeds it)."""
    parts = param_name.split(".")
    return any(p in HEAD_PREFIXES for p in parts[:-1])


def set_trainable(model: nn.Module, predicate) -> None:
    """Train exactly the parameters whose name satisfies ``predicate``."""
    for name, param in model.named_parameters():
        param.requires_grad_(bool(predicate(name)))


def full(model: nn.Module) -> None:
    """Every parameter trains."""
    set_trainable(model, lambda name: True)


def head_only(model: nn.Module) -> None:
    """Only the task head trains; the pretrained body is frozen."""
    set_trainable(model, is_head)
    if not any(p.requires_grad for p in model.parameters()):
        raise ValueError(
            f"strategy=head_only found no head parameters in {type(model).__name__} "
            f"(looked for modules named {', '.join(HEAD_PREFIXES)})"
        )


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, total


def describe(model: nn.Module) -> str:
    trainable, total = count_parameters(model)
    return f"trainable params: {trainable:,} of {total:,} ({100 * trainable / total:.2f}%)"
