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
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import lightning.pytorch as L
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from transformers.trainer_pt_utils import LengthGroupedSampler

from sftlab.errors import SftlabError
from sftlab.hardware import autocast_dtype
from sftlab.models.modeling_pooled import PooledForSequenceClassification

log = logging.getLogger(__name__)

Split = tuple[Callable[..., torch.Tensor], dict[str, nn.Module], Callable[..., torch.Tensor]]


def split_model(model: nn.Module) -> Split:
    """(body: inputs -> features, head modules, head: (modules, features) -> logits)."""
    if isinstance(model, PooledForSequenceClassification):
        return (
            model.features,
            {"dropout": model.dropout, "classifier": model.classifier},
            (lambda m, f: m["classifier"](m["dropout"](f))),
        )
    kind = getattr(model.config, "model_type", "")
    if kind == "bert":
        parts = {"dropout": model.dropout, "classifier": model.classifier}
        if model.bert.pooler is not None:
            parts["pooler"] = model.bert.pooler

        def bert_head(m, f):
            pooled = m["pooler"](f.unsqueeze(1)) if "pooler" in m else f
            return m["classifier"](m["dropout"](pooled))

        return _first_token(model.bert), parts, bert_head
    if kind == "distilbert":
        parts = {
            "pre": model.pre_classifier,
            "dropout": model.dropout,
            "classifier": model.classifier,
        }
        return (
            _first_token(model.distilbert),
            parts,
            (lambda m, f: m["classifier"](m["dropout"](torch.relu(m["pre"](f))))),
        )
    if kind in {"roberta", "xlm-roberta"}:
        return (
            _first_token(model.roberta),
            {"classifier": model.classifier},
            (lambda m, f: m["classifier"](f.unsqueeze(1))),
        )
    raise SftlabError(
        f"strategy.cache_features does not know where the head of {type(model).__name__} starts "
        f"(supported: bert, distilbert, roberta, model.pooling=mean|cls): set strategy.cache_features=false"
    )


def _first_token(body: nn.Module) -> Callable[..., torch.Tensor]:
    def features(**inputs: torch.Tensor) -> torch.Tensor:
        return body(**inputs).last_hidden_state[:, 0]

    return features


class CachedHead(nn.Module):
    """The head alone, reading features; its modules are the Hugging Face model's own."""

    def __init__(self, parts: dict[str, nn.Module], head: Callable[..., torch.Tensor]):
        super().__init__()
        self.parts = nn.ModuleDict(parts)
        self.head = head

    def forward(self, features: torch.Tensor) -> SimpleNamespace:
        return SimpleNamespace(logits=self.head(self.parts, features))


class FeatureDataset(Dataset):
    def __init__(self, features: torch.Tensor, labels: list[int], lengths: list[int]):
        self.features, self.labels, self.lengths = features, torch.tensor(labels), lengths

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"features": self.features[i], "labels": self.labels[i]}


class FeatureDataModule(L.LightningDataModule):
    """Batches of cached features, in the same order the text DataModule would give."""

    def __init__(
        self,
        datasets: dict[str, FeatureDataset],
        batch_size: int,
        eval_batch_size: int,
        group_by_length: bool,
    ):
        super().__init__()
        self.datasets = datasets
        self.batch_size, self.eval_batch_size, self.group_by_length = (
            batch_size,
            eval_batch_size,
            group_by_length,
        )

    def setup(self, stage: str | None = None) -> None:
        # The head's matmuls are tiny: one thread avoids the thread pool's per-op synchronisation,
        # which dominated a step (5x slower with 2 threads on a busy 2-core machine).
        self._threads = torch.get_num_threads()
        torch.set_num_threads(1)

    def teardown(self, stage: str | None = None) -> None:
        torch.set_num_threads(getattr(self, "_threads", torch.get_num_threads()))

    def train_dataloader(self) -> DataLoader:
        ds = self.datasets["train"]
        # The text DataModule's sampler over the same lengths: the same batches, epoch by epoch.
        sampler = (
            LengthGroupedSampler(self.batch_size, lengths=ds.lengths)
            if self.group_by_length
            else None
        )
        return DataLoader(ds, batch_size=self.batch_size, sampler=sampler, shuffle=sampler is None)

    def _eval(self, split: str) -> DataLoader:
        if split not in self.datasets:
            raise SftlabError(f"no {split} split: data.split gives it a fraction of 0")
        return DataLoader(self.datasets[split], batch_size=self.eval_batch_size)

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
) -> torch.Tensor:
    """(len(dataset), dim) features in dataset order; longest first in batches, for less padding.

    The body runs on ``device`` under the run's autocast (``trainer.precision``, resolved);
    the features come back to the CPU as fp32.
    """
    device = device or torch.device("cpu")
    lengths = dataset.lengths
    order = sorted(range(len(dataset)), key=lengths.__getitem__, reverse=True)
    out: torch.Tensor | None = None
    dtype = autocast_dtype(precision)
    for start in range(0, len(order), batch_size):
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
) -> tuple[CachedHead, FeatureDataModule]:
    """Run the frozen body once over every split; return the head and batches of its inputs."""
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
    device = device or torch.device("cpu")
    model.to(device)
    try:
        for split, ds in datamodule.datasets.items():
            store = store_dir / f"{split}.npy" if on_disk else None
            feats = extract(
                body, ds, datamodule.collate, cfg.eval_batch_size, precision, store, device
            )
            datasets[split] = FeatureDataset(feats, ds.labels, ds.lengths)
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
    return CachedHead(parts, head), FeatureDataModule(
        datasets, cfg.batch_size, cfg.eval_batch_size, cfg.group_by_length
    )


def _in(param: torch.Tensor, parts: dict[str, nn.Module]) -> bool:
    return any(param is q for m in parts.values() for q in m.parameters())
