"""A pooled sequence classifier over any Hugging Face encoder, in one self-contained file.

The head reads the attention-masked mean of the last hidden states (``pooling="mean"``, what
sentence-transformers models such as all-MiniLM-L6-v2 were trained for) or the first token's
state (``pooling="cls"``), then dropout and one linear layer.

sftlab saves this file beside exported weights (Hugging Face's custom-code convention:
``auto_map`` in config.json), so the folder loads without sftlab::

    pipeline("text-classification", model="run/model", trust_remote_code=True)

It must import nothing from sftlab: only torch and transformers.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

POOLINGS = ("mean", "cls")


class PooledClassifierConfig(PretrainedConfig):
    """The backbone's own config (kept as a dict) plus the pooling and the head's dropout."""

    model_type = "sftlab_pooled"

    def __init__(
        self,
        backbone: dict | None = None,
        pooling: str = "mean",
        classifier_dropout: float = 0.1,
        **kwargs,
    ):
        if isinstance(backbone, PretrainedConfig):
            backbone = backbone.to_dict()
        self.backbone = dict(backbone or {})
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        self.pooling = pooling
        self.classifier_dropout = classifier_dropout
        super().__init__(**kwargs)

    def backbone_config(self) -> PretrainedConfig:
        values = dict(self.backbone)
        return AutoConfig.for_model(values.pop("model_type"), **values)


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor | None, pooling: str) -> torch.Tensor:
    """(batch, seq, hidden) -> (batch, hidden): masked mean over real tokens, or the first token."""
    if pooling == "cls":
        return hidden[:, 0]
    if attention_mask is None:
        return hidden.mean(dim=1)
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


class PooledForSequenceClassification(PreTrainedModel):
    config_class = PooledClassifierConfig
    base_model_prefix = "backbone"

    def __init__(self, config: PooledClassifierConfig, backbone: PreTrainedModel | None = None):
        super().__init__(config)
        self.backbone = (
            backbone if backbone is not None else AutoModel.from_config(config.backbone_config())
        )
        if getattr(self.backbone, "pooler", None) is not None:
            self.backbone.pooler = (
                None  # BERT's tanh pooler reads only [CLS]; this head pools itself
            )
        hidden = self.backbone.config.hidden_size
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.classifier = nn.Linear(hidden, config.num_labels)
        nn.init.normal_(self.classifier.weight, std=0.02)
        nn.init.zeros_(self.classifier.bias)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        # The backbone arrives pretrained (or is loaded right after); only the head is new.
        if module is getattr(self, "classifier", None):
            nn.init.normal_(module.weight, std=0.02)
            nn.init.zeros_(module.bias)

    def features(
        self, input_ids=None, attention_mask=None, token_type_ids=None, **kwargs
    ) -> torch.Tensor:
        """The pooled vector the head reads: what a frozen backbone contributes."""
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        out = self.backbone(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        return pool(out.last_hidden_state, attention_mask, self.config.pooling)

    def head(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(features))

    def forward(
        self, input_ids=None, attention_mask=None, token_type_ids=None, labels=None, **kwargs
    ):
        kwargs.pop("return_dict", None)
        logits = self.head(self.features(input_ids, attention_mask, token_type_ids, **kwargs))
        loss = None
        if labels is not None:
            loss = nn.functional.cross_entropy(logits.float(), labels)
        return SequenceClassifierOutput(loss=loss, logits=logits)


PooledClassifierConfig.register_for_auto_class()
PooledForSequenceClassification.register_for_auto_class("AutoModelForSequenceClassification")
