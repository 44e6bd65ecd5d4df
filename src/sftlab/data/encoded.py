"""Token ids stored flat (one int array and row offsets per key): fast to cache, slice and load."""

from __future__ import annotations

from typing import Any

import numpy as np
from torch.utils.data import Dataset

# key -> (values, offsets); row i is values[offsets[i] : offsets[i + 1]]
Flat = dict[str, tuple[np.ndarray, np.ndarray]]


def flatten(encodings: dict[str, list[list[int]]]) -> Flat:
    out = {}
    for key, rows in encodings.items():
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum([len(r) for r in rows], out=offsets[1:])
        values = np.fromiter((v for r in rows for v in r), dtype=np.int32, count=int(offsets[-1]))
        out[key] = (values, offsets)
    return out


def gather(flat: Flat, rows: np.ndarray) -> Flat:
    """The given rows, in the given order, as a new flat encoding."""
    rows = np.asarray(rows, dtype=np.int64)
    out = {}
    for key, (values, offsets) in flat.items():
        starts, lengths = offsets[rows], offsets[rows + 1] - offsets[rows]
        new_offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=new_offsets[1:])
        index = np.repeat(starts - new_offsets[:-1], lengths) + np.arange(new_offsets[-1])
        out[key] = (values[index], new_offsets)
    return out


class EncodedDataset(Dataset):
    """Token ids and label ids of one split (padding happens per batch)."""

    def __init__(self, encodings: dict[str, list[list[int]]] | Flat, labels: list[int]):
        first = next(iter(encodings.values()), None)
        is_flat = isinstance(first, tuple)
        self.flat: Flat = encodings if is_flat else flatten(encodings)
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, Any]:
        item = {
            k: values[offsets[i] : offsets[i + 1]].tolist()
            for k, (values, offsets) in self.flat.items()
        }
        item["labels"] = self.labels[i]
        return item

    @property
    def encodings(self) -> dict[str, list[list[int]]]:
        """Per-row lists of every key (built on demand)."""
        return {
            k: [values[a:b].tolist() for a, b in zip(offsets[:-1], offsets[1:], strict=True)]
            for k, (values, offsets) in self.flat.items()
        }

    @property
    def lengths(self) -> list[int]:
        return np.diff(self.flat["input_ids"][1]).tolist()
