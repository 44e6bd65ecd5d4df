"""Unpadded training batches for BERT-family encoders: pad tokens never reach a dense layer.

A batch of B texts is packed into one row of T real tokens, with position ids that restart at
every text. Every per-token layer (embeddings, Q/K/V and output projections, feed-forward,
LayerNorm) then runs on T tokens instead of B x longest; only attention re-pads, inside each
layer, so that every text attends to its own tokens and nothing else. The batches are the same
random batches as with padding (no regrouping by length, which costs accuracy where length
tracks the label) and the logits equal the padded forward's up to float rounding.

The attention runs through transformers' attention interface under the name ``sftlab_unpadded``
(``enable`` registers it); batches without the packing keys (validation, test, predict) fall
through to SDPA unchanged.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

from sftlab.models.modeling_pooled import PooledForSequenceClassification
from sftlab.models.split import split_model

ATTN = "sftlab_unpadded"
# The keys an unpadded batch carries next to input_ids / position_ids / token_type_ids / labels.
KEYS = ("unpad_index", "unpad_valid", "unpad_mask")
# model_type -> (attribute of the encoder in *ForSequenceClassification, first position id)
ENCODERS = {"bert": ("bert", 0), "roberta": ("roberta", None), "xlm-roberta": ("roberta", None)}


def _attention(module, query, key, value, attention_mask, dropout=0.0, scaling=None, **kwargs):
    """(1, heads, T, d) packed q/k/v -> (1, T, heads, d): each text attends to its own tokens."""
    index, valid, mask = (kwargs.pop(k, None) for k in KEYS)
    if index is None:  # a padded batch (validation, test, predict): plain SDPA
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    (batch, longest), heads, dim = mask.shape, query.shape[1], query.shape[-1]

    def pad(x: torch.Tensor) -> torch.Tensor:  # -> (B, heads, L, d)
        return x[0].index_select(1, index).view(heads, batch, longest, dim).transpose(0, 1)

    out = F.scaled_dot_product_attention(
        pad(query),
        pad(key),
        pad(value),
        attn_mask=mask[:, None, None, :],
        dropout_p=dropout,
        scale=scaling,
    )
    out = out.transpose(1, 2).reshape(batch * longest, heads, dim).index_select(0, valid)
    return out.unsqueeze(0), None


def unwrap(model: nn.Module) -> nn.Module:
    """The Hugging Face model under a PEFT wrapper (LoRA layers stay inside it)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def encoder_of(model: nn.Module) -> tuple[nn.Module, str, int] | None:
    """(encoder, pooling, first position id) of a supported classifier, else None."""
    model = unwrap(model)
    if isinstance(model, PooledForSequenceClassification):
        encoder, pooling = model.backbone, model.config.pooling
    else:
        found = ENCODERS.get(getattr(getattr(model, "config", None), "model_type", ""))
        if found is None or not hasattr(model, found[0]):
            return None
        encoder, pooling = getattr(model, found[0]), "cls"
    kind = encoder.config.model_type
    if kind not in ENCODERS or encoder.config.is_decoder:
        return None
    first = ENCODERS[kind][1]
    if first is None:  # RoBERTa counts positions after its padding index
        first = encoder.config.pad_token_id + 1
    return encoder, pooling, first


def supports(model: nn.Module) -> bool:
    """Whether ``model``'s training batches can be unpadded (BERT / RoBERTa / XLM-R bodies,
    with their own head or sftlab's pooled one)."""
    return encoder_of(model) is not None


def enable(model: nn.Module) -> int:
    """Route ``model``'s attention through the unpadded kernel; returns the first position id
    the collator must use."""
    found = encoder_of(model)
    if found is None:
        raise ValueError(f"{type(unwrap(model)).__name__} cannot run unpadded batches")
    encoder, _, first = found
    # transformers' registries are global: registered here, when a run asks for it (idempotent)
    AttentionInterface.register(ATTN, _attention)
    ALL_MASK_ATTENTION_FUNCTIONS.register(ATTN, sdpa_mask)
    encoder.set_attn_implementation(ATTN)
    return first


def disable(model: nn.Module) -> None:
    """Back to SDPA, e.g. before the model is saved for plain Hugging Face use."""
    found = encoder_of(model)
    if found is not None and found[0].config._attn_implementation == ATTN:
        found[0].set_attn_implementation("sdpa")


class UnpaddedCollator:
    """Rows of token ids -> one packed row plus the indices that re-pad it for attention."""

    def __init__(self, first_position: int = 0):
        self.first_position = first_position

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        lengths = torch.tensor([len(r["input_ids"]) for r in rows])
        longest, total = int(lengths.max()), int(lengths.sum())
        starts = torch.cumsum(lengths, 0) - lengths
        steps = torch.arange(longest)
        mask = steps[None, :] < lengths[:, None]  # (B, L): real tokens
        out = {
            "input_ids": torch.tensor([t for r in rows for t in r["input_ids"]])[None],
            "position_ids": torch.cat([torch.arange(n) for n in lengths.tolist()])[None]
            + self.first_position,
            # (B*L,) where each padded slot reads from in the packed row (pads read any real token)
            "unpad_index": (starts[:, None] + steps[None, :]).clamp(max=total - 1).flatten(),
            "unpad_valid": mask.flatten().nonzero().flatten(),  # (T,) padded slots that are real
            "unpad_mask": mask,
            "labels": torch.tensor([r["labels"] for r in rows]),
        }
        if "token_type_ids" in rows[0]:
            out["token_type_ids"] = torch.tensor([t for r in rows for t in r["token_type_ids"]])[
                None
            ]
        return out


def is_unpadded(batch: dict[str, torch.Tensor]) -> bool:
    return "unpad_index" in batch


def logits(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The classifier's logits for an unpadded batch, as its padded forward would give them."""

    encoder, pooling, _ = encoder_of(model)
    inputs = {k: v for k, v in batch.items() if k not in ("labels", "attention_mask")}
    hidden = encoder(**inputs).last_hidden_state[0]  # (T, H)
    mask = batch["unpad_mask"]
    lengths = mask.sum(dim=1)
    if pooling == "cls":
        features = hidden.index_select(0, batch["unpad_index"].view(mask.shape)[:, 0])
    else:  # the mean over each text's tokens
        segment = batch["unpad_valid"] // mask.shape[1]  # slot b * L + j belongs to text b
        features = hidden.new_zeros(len(lengths), hidden.shape[-1]).index_add(0, segment, hidden)
        features = features / lengths[:, None].to(hidden.dtype)
    _, parts, head = split_model(unwrap(model))
    return head(parts, features)
