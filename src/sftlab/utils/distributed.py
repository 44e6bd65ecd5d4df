"""What sftlab adds so that Lightning's distributed strategies (DDP, FSDP, DeepSpeed) give the
same results as one process. Nothing here distributes work itself: Lightning does that.

- eval batches: each sample on exactly one rank (Lightning's sampler pads by repeating samples);
- train batches: a grouped or sorted order stays grouped per rank (Lightning's wrapper shuffles);
- ``all_rows``: every rank's rows of a tensor of any length (the multi-label threshold);
- ``share_features``: head-only features built once by rank 0, then broadcast or opened from disk;
- ``build_once``: a file lock, so a shared cache is built by one process while the others wait;
- ``launched_as_rank_zero``: rank 0 or not, from the environment, before the Trainer exists.
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import Dataset, DistributedSampler, Sampler

# What launchers set in the environment of each process: torchrun and Lightning's DDP launcher
# (RANK, NODE_RANK / GROUP_RANK, LOCAL_RANK), SLURM (SLURM_PROCID), LSF (JSM_NAMESPACE_RANK).
RANK_VARIABLES = (
    "RANK",
    "NODE_RANK",
    "GROUP_RANK",
    "LOCAL_RANK",
    "SLURM_PROCID",
    "JSM_NAMESPACE_RANK",
)


def launched_as_rank_zero() -> bool:
    """Whether this process is global rank 0 (or the only process), known from the environment
    before any Trainer or process group exists. Lightning's DDP launcher starts ranks 1..N-1 by
    running the command again, with their ranks in these variables."""
    return all(os.environ.get(key, "0").strip() in ("", "0") for key in RANK_VARIABLES)


def ranks(trainer: Any) -> tuple[int, int] | None:
    """(world size, global rank) when ``trainer`` runs more than one process, else None."""
    if trainer is None or getattr(trainer, "world_size", 1) <= 1:
        return None
    return trainer.world_size, trainer.global_rank


def eval_sampler(dataset: Dataset, trainer: Any) -> Sampler | None:
    """Rank r evaluates rows r, r + W, r + 2W... of ``dataset``, each row exactly once (ranks
    may differ by one row); None in one process. Metrics then count every row once."""
    world = ranks(trainer)
    if world is None:
        return None
    return UnrepeatedDistributedSampler(
        dataset, num_replicas=world[0], rank=world[1], shuffle=False
    )


def train_sampler(
    sampler: Sampler | None, batch_size: int, trainer: Any, seed: int | None = None
) -> Sampler | None:
    """``sampler`` cut into per-rank batches under DDP (see ``PerRankBatches``); as it is in one
    process, or when there is no sampler (Lightning then shards a plain shuffle itself).
    ``seed`` None: the run's seed (``seed_everything`` keeps it in ``PL_GLOBAL_SEED``)."""
    world = ranks(trainer)
    if world is None or sampler is None:
        return sampler
    seed = int(os.environ.get("PL_GLOBAL_SEED", 0)) if seed is None else seed
    return PerRankBatches(sampler, batch_size, world[0], world[1], seed)


class PerRankBatches(DistributedSampler):
    """The wrapped sampler's order, cut into batches of ``batch_size``; rank r takes batches
    r, r + W, r + 2W... so a length-grouped or sorted order stays grouped on every rank.

    Every rank draws the same order: the wrapped sampler runs under a torch seed made of
    ``seed`` and the epoch. The order is padded (from its start) to a whole number of batches
    per rank, so the ranks step in lockstep, as Lightning's own sampler does for training.
    """

    def __init__(self, sampler: Sampler, batch_size: int, num_replicas: int, rank: int, seed: int):
        n = len(sampler)
        super().__init__(range(n), num_replicas=num_replicas, rank=rank, shuffle=False, seed=seed)
        self.sampler, self.batch_size = sampler, batch_size
        per_rank = math.ceil(n / (batch_size * num_replicas))
        self.total_size = per_rank * batch_size * num_replicas
        self.num_samples = per_rank * batch_size

    def __iter__(self) -> Iterator[int]:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed + self.epoch)
            order = list(iter(self.sampler))
        while len(order) < self.total_size:  # more padding than rows only for tiny sets
            order += order[: self.total_size - len(order)]
        b, w = self.batch_size, self.num_replicas
        mine = (order[i : i + b] for i in range(self.rank * b, self.total_size, b * w))
        return iter([i for batch in mine for i in batch])


def all_rows(tensor: torch.Tensor) -> torch.Tensor:
    """The rows of ``tensor`` from every rank, rank by rank (ranks may hold different numbers
    of rows); ``tensor`` itself outside a process group."""
    import torch.distributed as dist
    from torchmetrics.utilities.distributed import gather_all_tensors

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return tensor
    return torch.cat(gather_all_tensors(tensor.contiguous()))


def average_grads(params: list[torch.Tensor]) -> None:
    """Average the gradients of ``params`` over the ranks (for parameters DDP does not know:
    those that started training after DDP wrapped the model)."""
    import torch.distributed as dist

    if not params or not (dist.is_available() and dist.is_initialized()):
        return
    missing = [p for p in params if p.grad is None]
    for p in missing:  # the same list on every rank, or all_reduce would mismatch
        p.grad = torch.zeros_like(p)
    grads = [p.grad for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    for g, part in zip(grads, flat.split([g.numel() for g in grads]), strict=True):
        g.copy_(part.view_as(g))
    for p in missing:  # no rank had a gradient: the optimizer skips it, as in one process
        if not p.grad.any():
            p.grad = None


def share_features(strategy: Any, datasets: dict[str, Any] | None) -> dict[str, Any]:
    """Rank 0's feature datasets on every rank: pickled over the process group when they are in
    memory, opened read-only from rank 0's ``.npy`` files when they were kept on disk."""
    import numpy as np

    payload = None
    if strategy.global_rank == 0:
        payload = {
            split: (ds, None) if ds.path is None else (ds.without_features(), str(ds.path))
            for split, ds in datasets.items()
        }
    payload = strategy.broadcast(payload, src=0)
    if strategy.global_rank == 0:
        return datasets
    shared = {}
    for split, (ds, path) in payload.items():
        if path is not None:
            ds.features = torch.from_numpy(np.load(path, mmap_mode="r"))
        shared[split] = ds
    return shared


@contextlib.contextmanager
def build_once(lock: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``lock`` (created if needed): the first process builds the shared
    entry, the others wait here and then find it built. The lock goes with the process, so a
    crashed builder never blocks the others."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
