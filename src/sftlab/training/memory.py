"""Bounded host memory on CPU runs, second half (the first is ``utils.setup.bound_kernel_cache``,
which caps oneDNN's per-shape cache: the cause of a Reuters R52 run's growth from 2.4 to 7.6 GB).
glibc keeps the pages of freed tensors in its heap, where tensors of other shapes may not fit;
``ReleaseFreedMemory`` hands the free pages back to the system every ``every_n_steps`` training
steps and after each evaluation (glibc's ``malloc_trim``; a no-op elsewhere)."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
from typing import Any

import lightning.pytorch as L

log = logging.getLogger(__name__)


@functools.cache
def _trim() -> Any:
    """glibc's ``malloc_trim``, or None (macOS, Windows, musl)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


def release_freed_memory() -> bool:
    """Return the heap's free pages to the system; True where glibc did it."""
    trim = _trim()
    return bool(trim is not None and trim(0))


class ReleaseFreedMemory(L.Callback):
    """``release_freed_memory()`` every ``every_n_steps`` training batches and at the end of
    each validation and test (a few milliseconds each time)."""

    def __init__(self, every_n_steps: int = 25):
        self.every_n_steps = every_n_steps

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        if trainer.global_step % self.every_n_steps == 0:
            release_freed_memory()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        release_freed_memory()

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        release_freed_memory()
