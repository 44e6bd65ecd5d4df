"""Tiny encoders and token rows with their padded forward: the reference that unpadded and
CUDA-graph batching must reproduce (tests/models/test_unpad.py, test_cuda_graphs.py)."""

from __future__ import annotations

import torch
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    RobertaConfig,
    RobertaForSequenceClassification,
)

from sftlab.models.modeling_pooled import PooledClassifierConfig, PooledForSequenceClassification

SMALL = dict(
    vocab_size=120,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=64,
    num_labels=3,
    max_position_embeddings=64,
)


def rows(pairs: bool = False) -> list[dict]:
    g = torch.Generator().manual_seed(0)
    rows = []
    for i, n in enumerate([5, 17, 3, 12, 9]):
        ids = torch.randint(3, 120, (n,), generator=g).tolist()
        row = {"input_ids": ids, "labels": i % 3}
        if pairs:
            row["token_type_ids"] = [0] * (n // 2) + [1] * (n - n // 2)
        rows.append(row)
    return rows


def padded(rows: list[dict], pad_id: int = 0) -> dict[str, torch.Tensor]:
    longest = max(len(r["input_ids"]) for r in rows)
    out = {
        "input_ids": torch.tensor(
            [r["input_ids"] + [pad_id] * (longest - len(r["input_ids"])) for r in rows]
        ),
        "attention_mask": torch.tensor(
            [[1] * len(r["input_ids"]) + [0] * (longest - len(r["input_ids"])) for r in rows]
        ),
    }
    if "token_type_ids" in rows[0]:
        out["token_type_ids"] = torch.tensor(
            [r["token_type_ids"] + [0] * (longest - len(r["input_ids"])) for r in rows]
        )
    return out


def models():
    torch.manual_seed(0)
    yield "bert", BertForSequenceClassification(BertConfig(**SMALL)), 0
    yield (
        "roberta",
        RobertaForSequenceClassification(
            RobertaConfig(**SMALL, pad_token_id=1, bos_token_id=0, eos_token_id=2)
        ),
        1,
    )
    for pooling in ("mean", "cls"):
        body = BertForSequenceClassification(BertConfig(**SMALL)).bert
        config = PooledClassifierConfig(body.config.to_dict(), pooling=pooling, num_labels=3)
        yield f"pooled-{pooling}", PooledForSequenceClassification(config, body), 0


def padded_references(pairs: bool):
    """(name, model, pad id, padded logits, gradients) per model of ``models``: the padded
    forward another way of batching must reproduce. The model is left in eval mode (no
    dropout, so both forwards agree exactly) with its gradients cleared."""
    examples = rows(pairs)
    labels = torch.tensor([r["labels"] for r in examples])
    for name, model, pad_id in models():
        if pairs and name == "roberta":
            continue  # RoBERTa has one token type
        model.eval()
        logits = model(**padded(examples, pad_id)).logits
        torch.nn.functional.cross_entropy(logits, labels).backward()
        expected = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        model.zero_grad()
        yield name, model, pad_id, logits.detach(), expected
