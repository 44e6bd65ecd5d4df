"""Packing of short training examples (``data.packing=true``): several prompt/response examples
share one row of at most ``max_length`` tokens instead of each being padded to the batch's
longest.

Each packed row carries ``position_ids`` that restart at 0 for every example and no
``attention_mask``: transformers then builds a block-diagonal causal mask from the position
ids (``masking_utils.find_packed_sequence_indices``), so no token attends across examples and
the loss equals the unpacked one. An example's first label is a prompt token (-100), so no
token is trained to predict the next example either.
"""

from __future__ import annotations

from collections import defaultdict

import torch

from sftlab.utils.errors import SftlabError

IGNORE = -100


def pack(rows: list[dict[str, list[int]]], max_length: int) -> list[dict[str, list[int]]]:
    """Best-fit decreasing: longest examples first, each into the fullest row it still fits
    (O(n * max_length)). Every example lands in exactly one row, whole."""
    order = sorted(range(len(rows)), key=lambda i: -len(rows[i]["input_ids"]))
    bins: list[list[int]] = []  # example indices per packed row
    room: list[int] = []
    by_room: dict[int, list[int]] = defaultdict(list)  # free tokens -> rows with that much room
    for i in order:
        n = len(rows[i]["input_ids"])
        if n > max_length:
            raise ValueError(f"example {i} has {n} tokens, more than max_length={max_length}")
        fit = next((r for r in range(n, max_length + 1) if by_room[r]), None)
        if fit is None:
            b = len(bins)
            bins.append([])
            room.append(max_length)
        else:
            b = by_room[fit].pop()
        bins[b].append(i)
        room[b] -= n
        by_room[room[b]].append(b)
    return [join([rows[i] for i in members]) for members in bins]


def join(examples: list[dict[str, list[int]]]) -> dict[str, list[int]]:
    packed: dict[str, list[int]] = {"input_ids": [], "labels": [], "position_ids": []}
    for ex in examples:
        packed["input_ids"] += ex["input_ids"]
        packed["labels"] += ex["labels"]
        packed["position_ids"] += list(range(len(ex["input_ids"])))
    return packed


def fill(rows: list[dict[str, list[int]]], max_length: int) -> float:
    """The fraction of the packed rows' token slots that hold tokens."""
    return sum(len(r["input_ids"]) for r in rows) / max(1, len(rows) * max_length)


def examples(row: dict[str, list[int]]) -> list[dict[str, list[int]]]:
    """The examples of one packed row (split where ``position_ids`` restart at 0)."""
    starts = [i for i, p in enumerate(row["position_ids"]) if p == 0] + [len(row["input_ids"])]
    return [
        {key: row[key][a:b] for key in ("input_ids", "labels")}
        for a, b in zip(starts, starts[1:], strict=False)
    ]


@torch.no_grad()
def check_packing(model: torch.nn.Module, packed_rows: list[dict[str, list[int]]]) -> None:
    """Fail unless ``model`` keeps packed examples apart: the logits of a packed row's first two
    examples must equal their logits run alone (an architecture that ignores ``position_ids``
    when it builds its attention mask would let them see each other)."""
    shared = next((r for r in packed_rows if len(examples(r)) >= 2), None)
    if shared is None:  # every example alone in its row: nothing can leak
        return
    pair = examples(shared)[:2]
    was_training = model.training
    model.eval()
    try:
        alone = [
            model(input_ids=torch.tensor([r["input_ids"]]), use_cache=False).logits[0] for r in pair
        ]
        row = join(pair)
        packed = model(
            input_ids=torch.tensor([row["input_ids"]]),
            position_ids=torch.tensor([row["position_ids"]]),
            use_cache=False,
        ).logits[0]
    finally:
        model.train(was_training)
    diff = (packed - torch.cat(alone)).abs().max().item()
    if diff > 1e-3:
        kind = getattr(getattr(model, "config", None), "model_type", type(model).__name__)
        raise SftlabError(
            f"data.packing=true: model_type '{kind}' lets packed examples attend to each other "
            f"(logits differ by {diff:.3g}): set data.packing=false"
        )
