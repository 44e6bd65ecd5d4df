"""Head-only training on cached features: the frozen body runs once per example, the head then
trains for every epoch on the kept features (``strategy=head_only``, ``strategy.cache_features``).

The body runs in eval mode (no dropout) and the head's parameters are shared with the Hugging
Face model, so once the head is trained the full model is ready to export as it is. The result
equals running the frozen body every step with dropout off, up to float rounding (padding).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import lightning.pytorch as L
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from sftlab.data.imbalance import train_sampler
from sftlab.data.resumable import ResumableData
from sftlab.models.split import split_model
from sftlab.utils import distributed
from sftlab.utils.errors import SftlabError
from sftlab.utils.files import atomic_path
from sftlab.utils.hardware import autocast_dtype
from sftlab.utils.progress import progress_bar

log = logging.getLogger(__name__)


class CachedHead(nn.Module):
    """The head alone, reading features; its modules are the Hugging Face model's own."""

    def __init__(self, parts: dict[str, nn.Module], head: Callable[..., torch.Tensor]):
        super().__init__()
        self.parts = nn.ModuleDict(parts)
        self.head = head

    def forward(self, features: torch.Tensor) -> SimpleNamespace:
        return SimpleNamespace(logits=self.head(self.parts, features))


class FeatureDataset(Dataset):
    """Features of one split; ``path``: the ``.npy`` file they live in (None: in memory).
    ``features`` is None on the DDP ranks that wait for rank 0's (``sftlab.utils.distributed``)."""

    def __init__(
        self,
        features: torch.Tensor | None,
        labels: list[int],
        lengths: list[int],
        path: Path | None = None,
    ):
        self.features, self.labels, self.lengths = features, torch.tensor(labels), lengths
        self.path = path

    def without_features(self) -> FeatureDataset:
        return FeatureDataset(None, self.labels.tolist(), self.lengths, self.path)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"features": self.features[i], "labels": self.labels[i]}


class FeatureDataModule(ResumableData, L.LightningDataModule):
    """Batches of cached features, in the same order the text DataModule would give."""

    def __init__(self, datasets: dict[str, FeatureDataset], config: Any, seed: int):
        super().__init__()
        self.datasets = datasets
        self.config = config  # the text DataModule's DataConfig: batch sizes, sampler, grouping
        self.seed = seed
        self._shared = False

    def setup(self, stage: str | None = None) -> None:
        # The head's matmuls are tiny: one thread avoids the thread pool's per-op synchronisation,
        # which dominated a step (5x slower with 2 threads on a busy 2-core machine).
        self._threads = torch.get_num_threads()
        torch.set_num_threads(1)
        if distributed.ranks(self.trainer) and not self._shared:  # rank 0 built them, once
            self.datasets = distributed.share_features(self.trainer.strategy, self.datasets)
            self._shared = True

    def teardown(self, stage: str | None = None) -> None:
        torch.set_num_threads(getattr(self, "_threads", torch.get_num_threads()))

    def train_dataloader(self) -> DataLoader:
        ds, cfg = self.datasets["train"], self.config
        # The text DataModule's sampler over the same labels and lengths: the same batches.
        sampler = train_sampler(cfg, ds.labels.tolist(), ds.lengths, self.seed)
        sampler = distributed.train_sampler(sampler, cfg.batch_size, self.trainer, self.seed)
        return self.train_loader(
            ds, batch_size=cfg.batch_size, sampler=sampler, shuffle=sampler is None
        )

    def _eval(self, split: str) -> DataLoader:
        if split not in self.datasets:
            raise SftlabError(f"no {split} split: data.split gives it a fraction of 0")
        rows = self.datasets[split]
        sampler = distributed.eval_sampler(rows, self.trainer)
        return DataLoader(rows, batch_size=self.config.eval_batch_size, sampler=sampler)

    def val_dataloader(self) -> DataLoader:
        return self._eval("validation")

    def test_dataloader(self) -> DataLoader:
        return self._eval("test")


@torch.no_grad()
def extract(
    body: Callable[..., torch.Tensor],
    dataset: Any,
    collate: Callable,
    batch_size: int,
    precision: str = "32",
    store: Path | None = None,
    device: torch.device | None = None,
    desc: str | None = None,
) -> torch.Tensor:
    """(len(dataset), dim) features in dataset order; longest first in batches, for less padding.

    The body runs on ``device`` under the run's autocast (``trainer.precision``, resolved);
    the features come back to the CPU as fp32. ``desc``: show progress under that name.
    """
    device = device or torch.device("cpu")
    lengths = dataset.lengths
    order = sorted(range(len(dataset)), key=lengths.__getitem__, reverse=True)
    out: torch.Tensor | None = None
    dtype = autocast_dtype(precision)
    starts = range(0, len(order), batch_size)
    for start in progress_bar(starts, len(starts), desc or "features", enabled=desc is not None):
        idx = order[start : start + batch_size]
        batch = collate([dataset[i] for i in idx])
        inputs = {k: v.to(device) for k, v in batch.items() if k != "labels"}
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            feats = body(**inputs).float().cpu()
        if out is None:
            shape = (len(dataset), feats.shape[-1])
            if store is not None:
                store.parent.mkdir(parents=True, exist_ok=True)
                out = torch.from_numpy(
                    np.lib.format.open_memmap(store, mode="w+", dtype=np.float32, shape=shape)
                )
            else:
                out = torch.empty(shape)
        out[idx] = feats
    return out if out is not None else torch.empty(0, 0)


def cache_features(
    model: nn.Module,
    datamodule: Any,
    precision: str = "32",
    device: torch.device | None = None,
    max_memory_mb: float = 2048,
    store_dir: Path | None = None,
    build: bool = True,
    progress: bool = False,
) -> tuple[CachedHead, FeatureDataModule]:
    """Run the frozen body once over every split; return the head and batches of its inputs.

    ``build=False`` (DDP ranks other than 0): extract nothing; the FeatureDataModule receives rank
    0's features when the trainer sets it up. ``progress``: a bar (or plain lines) per split."""
    if any(
        p.requires_grad for n, p in model.named_parameters() if not _in(p, split_model(model)[1])
    ):
        raise SftlabError(
            "strategy.cache_features needs a frozen body: use it with strategy=head_only"
        )
    body, parts, head = split_model(model)
    model.eval()  # the frozen body runs without dropout; the head goes back to train mode in the module
    started = time.perf_counter()
    cfg = datamodule.config
    hidden = next(
        m.in_features for part in parts.values() for m in part.modules() if isinstance(m, nn.Linear)
    )
    rows = sum(len(ds) for ds in datamodule.datasets.values())
    on_disk = store_dir is not None and rows * hidden * 4 / 2**20 > max_memory_mb
    datasets = {}
    if not build:  # a DDP rank other than 0: rank 0's features arrive in setup()
        datasets = {
            split: FeatureDataset(None, ds.labels, ds.lengths)
            for split, ds in datamodule.datasets.items()
        }
        return CachedHead(parts, head), FeatureDataModule(datasets, cfg, datamodule.seed)
    device = device or torch.device("cpu")
    model.to(device)
    try:
        for split, ds in datamodule.datasets.items():
            store = store_dir / f"{split}.npy" if on_disk else None
            # complete before it gets its name: no rank ever opens half a file
            with atomic_path(store) if store else nullcontext() as tmp:
                feats = extract(
                    body,
                    ds,
                    datamodule.collate,
                    cfg.eval_batch_size,
                    precision,
                    tmp,
                    device,
                    desc=f"features {split}" if progress else None,
                )
            datasets[split] = FeatureDataset(feats, ds.labels, ds.lengths, store)
    finally:
        model.to("cpu")  # the frozen body leaves the accelerator; Lightning moves the head
    log.info(
        "cached features of %d rows in %.1f s on %s, precision %s (%s)",
        rows,
        time.perf_counter() - started,
        device,
        precision,
        f"on disk in {store_dir}" if on_disk else "in memory",
    )
    return CachedHead(parts, head), FeatureDataModule(datasets, cfg, datamodule.seed)


def _in(param: torch.Tensor, parts: dict[str, nn.Module]) -> bool:
    return any(param is q for m in parts.values() for q in m.parameters())
