"""Imbalanced labels: class weights for the loss, and a sampler that oversamples rare labels."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Sampler

from sftlab.utils.errors import SftlabError

# loss.class_weights=auto weighs the loss when the largest class has at least this many times the
# rows of the smallest (airline tweets: 3.9x, unweighted; Reuters R52: 1,300x, weighted).
AUTO_RATIO = 10.0


def class_weights(
    spec: Any, label_ids: Sequence[int], label_names: list[str]
) -> list[float] | None:
    """``loss.class_weights``: null, ``balanced`` (n / (k * count), from the training labels),
    ``sqrt`` (the square root of balanced: rare classes count more, less than with balanced),
    ``auto`` (sqrt where the classes are skewed, ``AUTO_RATIO``, else none) or one weight per
    label in label order."""
    if spec is None:
        return None
    k = len(label_names)
    if spec in ("balanced", "sqrt", "auto"):
        counts = np.bincount(np.asarray(label_ids, dtype=int), minlength=k)
        if spec == "auto":
            present = counts[counts > 0]
            if len(present) < 2 or present.max() < AUTO_RATIO * present.min():
                return None
            counts = np.maximum(counts, 1)  # a label with no training row gets the top weight
        elif (counts == 0).any():
            missing = label_names[int(np.argmin(counts))]
            raise SftlabError(f"loss.class_weights={spec}: no training rows with label '{missing}'")
        balanced = len(label_ids) / (k * counts)
        weights = balanced if spec == "balanced" else np.sqrt(balanced)
        return [float(w) for w in weights]
    if isinstance(spec, str) or not isinstance(spec, Sequence):
        raise SftlabError(
            f"loss.class_weights must be null, auto, balanced, sqrt or a list of {k} numbers, "
            f"got {spec!r}"
        )
    if len(spec) != k or any(not isinstance(w, (int, float)) or w < 0 for w in spec):
        raise SftlabError(
            f"loss.class_weights needs {k} non-negative numbers, one per label in the order "
            f"{label_names}; got {list(spec)}"
        )
    return [float(w) for w in spec]


def describe_weights(spec: Any, weights: list[float] | None, label_names: list[str]) -> str:
    """One log line: which loss weights the run uses and why."""
    if weights is None:
        if spec == "auto":
            return (
                f"loss.class_weights=auto: unweighted cross-entropy (the largest class has fewer "
                f"than {AUTO_RATIO:g}x the rows of the smallest)"
            )
        return "loss.class_weights: unweighted cross-entropy"
    low, high = int(np.argmin(weights)), int(np.argmax(weights))
    why = f" (classes skewed {AUTO_RATIO:g}x or more: sqrt of balanced)" if spec == "auto" else ""
    return (
        f"loss.class_weights={spec if isinstance(spec, str) else 'list'}{why}: weights from "
        f"{weights[low]:.3g} ('{label_names[low]}') to {weights[high]:.3g} ('{label_names[high]}')"
    )


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
