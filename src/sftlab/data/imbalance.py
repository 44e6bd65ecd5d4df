"""Imbalanced labels: class weights for the loss, and a sampler that oversamples rare labels."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Sampler

from sftlab.utils.errors import SftlabError


def class_weights(
    spec: Any, label_ids: Sequence[int], label_names: list[str]
) -> list[float] | None:
    """``loss.class_weights``: null, ``balanced`` (n / (k * count), from the training labels)
    or one weight per label in label order."""
    if spec is None:
        return None
    k = len(label_names)
    if spec == "balanced":
        counts = np.bincount(np.asarray(label_ids, dtype=int), minlength=k)
        if (counts == 0).any():
            missing = label_names[int(np.argmin(counts))]
            raise SftlabError(
                f"loss.class_weights=balanced: no training rows with label '{missing}'"
            )
        return [float(w) for w in len(label_ids) / (k * counts)]
    if isinstance(spec, str) or not isinstance(spec, Sequence):
        raise SftlabError(
            f"loss.class_weights must be null, 'balanced' or a list of {k} numbers, got {spec!r}"
        )
    if len(spec) != k or any(not isinstance(w, (int, float)) or w < 0 for w in spec):
        raise SftlabError(
            f"loss.class_weights needs {k} non-negative numbers, one per label in the order "
            f"{label_names}; got {list(spec)}"
        )
    return [float(w) for w in spec]


def train_sampler(
    cfg: Any, labels: Sequence[int], lengths: Sequence[int], seed: int
) -> Sampler[int] | None:
    """The training order for ``data.sampler`` and ``data.group_by_length`` (None = shuffle):
    one place, so that token batches and cached-feature batches follow the same options."""
    lengths = lengths if cfg.group_by_length else None
    if cfg.sampler == "balanced":
        return BalancedSampler(labels, lengths, cfg.batch_size, seed=seed)
    if lengths is not None:
        from transformers.trainer_pt_utils import LengthGroupedSampler

        return LengthGroupedSampler(cfg.batch_size, lengths=list(lengths))
    return None


class BalancedSampler(Sampler[int]):
    """Each epoch draws ``len(labels)`` indices with replacement so every label is equally
    likely (a WeightedRandomSampler with weights 1 / count); with ``lengths`` the draw is then
    grouped by length (mega-batches of 50 batches sorted longest first) to cut padding."""

    def __init__(
        self,
        labels: Sequence[int],
        lengths: Sequence[int] | None = None,
        batch_size: int = 32,
        seed: int = 0,
    ):
        labels_arr = np.asarray(labels, dtype=int)
        counts = np.bincount(labels_arr)
        self.weights = torch.as_tensor(1.0 / counts[labels_arr], dtype=torch.double)
        self.lengths = None if lengths is None else np.asarray(lengths)
        self.batch_size = batch_size
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.weights)

    def set_epoch(self, epoch: int) -> None:
        """Lightning calls this before each epoch: a resumed run draws the same epochs again."""
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        drawn = torch.multinomial(
            self.weights, len(self.weights), replacement=True, generator=generator
        )
        drawn = drawn.numpy()
        if self.lengths is None:
            return iter(drawn.tolist())
        size = 50 * self.batch_size
        megabatches = [drawn[i : i + size] for i in range(0, len(drawn), size)]
        ordered = [mb[np.argsort(-self.lengths[mb], kind="stable")] for mb in megabatches]
        return iter(np.concatenate(ordered).tolist())
