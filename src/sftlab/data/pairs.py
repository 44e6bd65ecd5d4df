"""Text pairs for contrastive fine-tuning (SetFit's stage 1): for each training row, pairs with
another row of its label (target 1.0) and with a row of another label (target 0.0).

The pairs are index pairs into the training rows, drawn with a seeded generator: the same seed,
labels and count give the same pairs. Positives and negatives come in equal numbers, and no row
is paired with itself.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sftlab.utils.errors import SftlabError

Pair = tuple[int, int, float]


def contrastive_pairs(labels: Sequence[int], pairs_per_row: int, seed: int) -> list[Pair]:
    """``pairs_per_row`` rounds over the rows; in each, every row whose label has another row
    and that has a row of another label gives one positive and one negative pair."""
    if pairs_per_row < 1:
        raise SftlabError(f"pairs per row must be >= 1, got {pairs_per_row}")
    ids = np.asarray(labels)
    names, inverse = np.unique(ids, return_inverse=True)
    if len(names) < 2:
        raise SftlabError(
            f"contrastive pairs need at least 2 labels in the training rows, got {len(names)}"
        )
    members = [np.flatnonzero(inverse == k) for k in range(len(names))]
    rng = np.random.default_rng(seed)
    pairs: list[Pair] = []
    for _ in range(pairs_per_row):
        for i in rng.permutation(len(ids)):
            same = members[inverse[i]]
            if len(same) < 2:
                continue  # no positive for a label's only row: its negative is left out too
            j = i
            while j == i:
                j = int(same[rng.integers(len(same))])
            k = i
            while inverse[k] == inverse[i]:  # a row of another label (rows x labels arrays avoided)
                k = int(rng.integers(len(ids)))
            pairs += [(int(i), j, 1.0), (int(i), k, 0.0)]
    if not pairs:
        raise SftlabError("no label has 2 training rows: contrastive pairs need positives")
    return pairs
