"""Where a classifier's frozen body ends and its head starts: head-only training caches the
body's features, and the unpadded and CUDA-graph forwards run the body and head apart."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from sftlab.models.modeling_pooled import PooledForSequenceClassification
from sftlab.utils.errors import SftlabError

Split = tuple[Callable[..., torch.Tensor], dict[str, nn.Module], Callable[..., torch.Tensor]]


def split_model(model: nn.Module) -> Split:
    """(body: inputs -> features, head modules, head: (modules, features) -> logits)."""
    if isinstance(model, PooledForSequenceClassification):
        return (
            model.features,
            {"dropout": model.dropout, "classifier": model.classifier},
            (lambda m, f: m["classifier"](m["dropout"](f))),
        )
    kind = getattr(model.config, "model_type", "")
    if kind == "bert":
        parts = {"dropout": model.dropout, "classifier": model.classifier}
        if model.bert.pooler is not None:
            parts["pooler"] = model.bert.pooler

        def bert_head(m, f):
            pooled = m["pooler"](f.unsqueeze(1)) if "pooler" in m else f
            return m["classifier"](m["dropout"](pooled))

        return _first_token(model.bert), parts, bert_head
    if kind == "distilbert":
        parts = {
            "pre": model.pre_classifier,
            "dropout": model.dropout,
            "classifier": model.classifier,
        }
        return (
            _first_token(model.distilbert),
            parts,
            (lambda m, f: m["classifier"](m["dropout"](torch.relu(m["pre"](f))))),
        )
    if kind in {"roberta", "xlm-roberta"}:
        return (
            _first_token(model.roberta),
            {"classifier": model.classifier},
            (lambda m, f: m["classifier"](f.unsqueeze(1))),
        )
    raise SftlabError(
        f"strategy.cache_features does not know where the head of {type(model).__name__} starts "
        f"(supported: bert, distilbert, roberta, model.pooling=mean|cls): set strategy.cache_features=false"
    )


def _first_token(body: nn.Module) -> Callable[..., torch.Tensor]:
    def features(**inputs: torch.Tensor) -> torch.Tensor:
        return body(**inputs).last_hidden_state[:, 0]

    return features
