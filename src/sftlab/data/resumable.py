"""A training loader that resumes mid-epoch on the very batches an uninterrupted run would see.

A checkpoint taken inside an epoch stores, through the DataModule's ``state_dict`` (Lightning
saves and restores it with the checkpoint), the random state at the start of that epoch, the
number of batches already trained and the random state at the save. On resume the loader draws
the epoch's order again from the first, skips the trained batches and puts the second back, so
shuffling and dropout continue exactly where they stopped. A checkpoint taken once the epoch's
batches are all trained (at the epoch end, after its validation) is where the next epoch starts:
it stores the random state that epoch's order is drawn from, and nothing to skip.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader


def rng_state() -> dict[str, Any]:
    """Python, NumPy and torch (CPU and CUDA) random states, in types ``weights_only`` loads."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": [name, keys.tolist(), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class ResumableLoader(DataLoader):
    """A DataLoader that remembers the random state its epoch's order was drawn from."""

    def __init__(self, *args: Any, resume: dict[str, Any] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.resume = resume
        self.epoch_rng: dict[str, Any] | None = None

    # Lightning asks a loader for these to decide whether it resumes mid-epoch; the position is
    # kept by the DataModule (which knows the trainer's progress), so the loader's own is empty.
    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass

    def __iter__(self):
        resume, self.resume = self.resume, None
        if resume:
            set_rng_state(resume["epoch_rng"])
        self.epoch_rng = rng_state()
        iterator = super().__iter__()
        if resume:
            for _ in range(int(resume["batches"])):  # the batches this epoch already trained on
                next(iterator, None)
            if "rng" in resume:  # saved inside the epoch: dropout goes on from there
                set_rng_state(resume["rng"])
        return iterator


class ResumableData:
    """Mixin for a LightningDataModule: its train loader's position travels with checkpoints."""

    _resume: dict[str, Any] | None = None
    _train_loader: ResumableLoader | None = None

    def train_loader(self, *args: Any, **kwargs: Any) -> ResumableLoader:
        """The train DataLoader, positioned where a restored checkpoint left off."""
        loader = ResumableLoader(*args, resume=self._resume, **kwargs)
        self._resume, self._train_loader = None, loader
        return loader

    def state_dict(self) -> dict[str, Any]:
        trainer = getattr(self, "trainer", None)
        loader = self._train_loader
        if trainer is None or loader is None or loader.epoch_rng is None:
            return {}
        batches = trainer.fit_loop.epoch_loop.batch_progress.current.processed
        if batches >= trainer.num_training_batches:
            # The epoch's batches are all trained: Lightning resumes at the next epoch, whose
            # order an uninterrupted run draws from the random state it has now.
            return {"epoch_rng": rng_state(), "batches": 0}
        return {"epoch_rng": loader.epoch_rng, "rng": rng_state(), "batches": batches}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._resume = dict(state) or None
