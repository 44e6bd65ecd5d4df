"""The LightningDataModule for text classification: rows -> label ids -> split -> token ids -> batches."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning.pytorch as L
import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader
from transformers import DataCollatorWithPadding, PreTrainedTokenizerBase

from sftlab.config.data import AUTO, AUTO_CAP, AUTO_COVERAGE, DataConfig
from sftlab.data import cache, imbalance, targets
from sftlab.data.encoded import EncodedDataset, flatten, gather
from sftlab.data.resumable import ResumableData
from sftlab.data.rows import prepare
from sftlab.data.sources import load_splits
from sftlab.data.splits import SPLITS, split_rows
from sftlab.utils import distributed
from sftlab.utils.errors import SftlabError

__all__ = ["DataConfig", "EncodedDataset", "TextDataModule"]

log = logging.getLogger(__name__)


class TextDataModule(ResumableData, L.LightningDataModule):
    """Labelled texts for the encoder tasks (single-label, multi-label, regression) from a
    packaged set, the user's files or the hub.

    ``frames`` holds each split's rows (``text``, [``text_pair``], ``label``, ``label_id``, and
    ``_row``: the row number in its source); ``datasets`` their token ids after ``setup()``.
    """

    def __init__(self, config: DataConfig, tokenizer: PreTrainedTokenizerBase, seed: int = 42):
        super().__init__()
        self.config = config
        self.tokenizer = tokenizer
        self.seed = seed
        self.label_names: list[str] = []
        self.frames: dict[str, pd.DataFrame] = {}
        self.datasets: dict[str, EncodedDataset] = {}
        self.collate = DataCollatorWithPadding(tokenizer)
        # Training batches only: the recipe may choose a packing or fixed-shape collator.
        self.train_collate: Callable[[list[dict[str, Any]]], dict[str, Any]] = self.collate
        self.cache = cache.DiskCache(config.cache_dir)
        self._rows_key: str | None = None
        self._pool: pd.DataFrame | None = None  # every given split's rows, in one frame

    def use_train_collate(self, collate: Callable[[list[dict[str, Any]]], dict[str, Any]]) -> None:
        """Batch the training split with ``collate`` (``data.unpad`` packing, CUDA-graph
        shapes); evaluation keeps padded batches."""
        self.train_collate = collate

    # -- rows -----------------------------------------------------------------------------
    def load_frames(self) -> dict[str, pd.DataFrame]:
        """Read, clean, validate and split the rows; sets ``label_names``. Idempotent."""
        if self.frames:
            return self.frames
        cfg = self.config
        # No cache, no key: the files are not read twice (hashing, then parsing).
        self._rows_key = cache.rows_key(cfg) if self.cache.root else None
        entry = self.cache.get_or_build(self._rows_key, "rows", self._prepare_rows)
        for message in entry["messages"]:
            log.warning(message)
        pool, wheres = entry["pool"], entry["wheres"]
        given = {name: pool[pool["_given"] == name] for name in SPLITS if name in wheres}
        if cfg.is_classification:
            self.label_names = self._label_names(given, wheres, entry["class_names"])
            label2id = {name: i for i, name in enumerate(self.label_names)}
            pool = pool.assign(label_id=pool["label"].map(label2id))
        else:  # regression / multilabel: floats or multi-hot lists (sftlab.data.targets)
            self.label_names, pool = targets.assign(cfg, pool, given, wheres)
        self._pool = pool
        given = {name: pool[pool["_given"] == name] for name in given}
        self.frames = split_rows(given, self.config, self.seed, self.label_names)
        self._warn_overlap(wheres)
        for name, part in self.frames.items():
            if not cfg.is_classification:
                log.info("%s: %d rows", name, len(part))
                continue
            counts = part["label"].value_counts().reindex(self.label_names, fill_value=0)
            log.info("%s: %d rows; %s", name, len(part), describe_counts(counts))
            absent = [label for label, n in counts.items() if n == 0]
            if absent and name != "train" and cfg.task == "classification":
                log.warning(
                    "%s: no rows of %d label%s (%s): %s/f1_macro and the other macro averages "
                    "leave them out unless the model predicts them, and their per-label %s "
                    "scores measure nothing",
                    name,
                    len(absent),
                    "" if len(absent) == 1 else "s",
                    _names(absent),
                    "val" if name == "validation" else name,
                    name,
                )
        return self.frames

    def _warn_overlap(self, wheres: dict[str, str]) -> None:
        """Rows of validation/test that are also in train (split files, or duplicates kept)."""

        def keys(frame: pd.DataFrame) -> pd.Series:
            return (
                frame["text"] + "\x00" + frame["text_pair"]
                if "text_pair" in frame
                else frame["text"]
            )

        train = set(keys(self.frames["train"]).tolist())  # (pandas' isin on arrow strings is slow)
        for name in ("validation", "test"):
            if name in self.frames:
                shared = sum(k in train for k in keys(self.frames[name]).tolist())
                if shared:
                    where = wheres.get(name, f"the {name} split")
                    log.warning("%s: %d rows also appear in train (leakage)", where, shared)

    def _prepare_rows(self) -> dict[str, Any]:
        cfg = self.config
        splits = load_splits(
            cfg.source, cfg.path, cfg.encoding, cfg.validation_path, cfg.test_path, cfg.hub_config
        )
        parts, messages, wheres, class_names = [], [], {}, None
        for name, split in splits.items():
            # A given validation or test file is used as it is: its duplicates are only reported.
            frame, notes = prepare(
                split, cfg, drop_duplicates=cfg.drop_duplicates and name == "train"
            )
            messages += notes
            if frame.empty:
                if name == "train":
                    raise SftlabError(f"{split.where}: no usable rows left ({'; '.join(notes)})")
                messages.append(
                    f"{split.where}: no labelled rows: making the {name} split from train"
                )
                continue
            parts.append(frame.assign(_given=name))
            wheres[name] = split.where
            class_names = class_names or split.label_names
        pool = pd.concat(parts, ignore_index=True)
        pool["_pos"] = range(len(pool))
        return {"pool": pool, "wheres": wheres, "class_names": class_names, "messages": messages}

    def _label_names(
        self, given: dict[str, pd.DataFrame], wheres: dict[str, str], class_names
    ) -> list[str]:
        train, where, column = given["train"], wheres["train"], self.config.label_column
        found = set(train["label"].unique())
        if self.config.labels is not None:
            names = [str(x) for x in self.config.labels]
            unknown = ~train["label"].isin(names)
            if unknown.any():
                row = train.loc[unknown.idxmax()]
                raise SftlabError(
                    f"{where}: row {row['_row']}, column '{column}' has label '{row['label']}' not in "
                    f"data.labels {names}: add it to data.labels or set data.labels=null"
                )
            unused = [n for n in names if n not in found]
            if unused:
                log.warning("%s: data.labels %s never appear in the training rows", where, unused)
        elif class_names and found <= set(class_names):
            names = list(class_names)
        else:
            names = sorted(found, key=_natural_key)
        if len(found) < 2:
            raise SftlabError(
                f"{where}: column '{column}' holds a single class ({next(iter(found))!r}); "
                f"classification needs at least 2 (set data.label_column or add rows of other classes)"
            )
        for name in ("validation", "test"):
            if name not in given:
                continue
            unseen = ~given[name]["label"].isin(found)
            if unseen.any():
                row = given[name].loc[unseen.idxmax()]
                raise SftlabError(
                    f"{wheres[name]}: row {row['_row']}, column '{column}' has label '{row['label']}' "
                    f"that never appears in the training data {where} ({int(unseen.sum())} rows): "
                    f"fix or drop those rows, or add training rows with that label"
                )
        return names

    # -- tokens ---------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        self.load_frames()
        if self.datasets:
            return
        if self.config.max_length == AUTO:
            self.config.max_length = self.auto_max_length()
        else:
            self.config.max_length = within_positions(self.config.max_length, self.tokenizer)
        key = (
            None
            if self._rows_key is None
            else cache.tokens_key(self._rows_key, self.tokenizer, self.config.max_length)
        )
        encodings = self.cache.get_or_build(
            key, "tokens", lambda: flatten(self.tokenize(self._pool))
        )
        for name, frame in self.frames.items():
            self.datasets[name] = EncodedDataset(
                gather(encodings, frame["_pos"].to_numpy()), targets.values(frame, self.config.task)
            )

    def tokenize(self, frame: pd.DataFrame) -> dict[str, list[list[int]]]:
        """Token ids of every row (a pair when ``text_pair`` is there), truncated to ``max_length``."""
        pairs = frame["text_pair"].tolist() if "text_pair" in frame else None
        enc = self.tokenizer(
            frame["text"].tolist(), pairs, truncation=True, max_length=self.config.max_length
        )
        return {k: list(v) for k, v in enc.items()}

    def auto_max_length(self) -> int:
        """``data.max_length=auto``: the length (a multiple of 8) that keeps ``AUTO_COVERAGE`` of
        the training texts whole, capped at what the model was trained on (``model_length_limit``)."""
        limit = model_length_limit(self.tokenizer)
        train = self.frames["train"]
        pairs = train["text_pair"].tolist() if "text_pair" in train else None
        ids = self.tokenizer(train["text"].tolist(), pairs, truncation=False)["input_ids"]
        lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
        needed = int(np.ceil(np.quantile(lengths, AUTO_COVERAGE) / 8) * 8)
        chosen = max(8, min(limit, needed))
        log.info(
            "data.max_length: auto -> %d tokens (covers %.1f%% of %d training texts whole; "
            "median %d, longest %d; limit %d)",
            chosen,
            100 * float((lengths <= chosen).mean()),
            len(lengths),
            int(np.median(lengths)),
            int(lengths.max()),
            limit,
        )
        return chosen

    def encode(self, frame: pd.DataFrame) -> EncodedDataset:
        """Token ids of any frame with ``text`` and ``label_id`` columns (no cache)."""
        return EncodedDataset(self.tokenize(frame), targets.values(frame, self.config.task))

    def class_weights(self, spec: Any) -> list[float] | None:
        """``loss.class_weights`` resolved against the training labels."""
        self.load_frames()
        return imbalance.class_weights(
            spec, self.frames["train"]["label_id"].tolist(), self.label_names
        )

    # -- batches --------------------------------------------------------------------------
    def train_dataloader(self) -> DataLoader:
        ds, cfg = self.datasets["train"], self.config
        sampler = imbalance.train_sampler(cfg, ds.labels, ds.lengths, self.seed)
        # Under DDP each rank takes whole batches of that order (Lightning would reshuffle it).
        sampler = distributed.train_sampler(sampler, cfg.batch_size, self.trainer, self.seed)
        return self.train_loader(
            ds,
            batch_size=cfg.batch_size,
            sampler=sampler,
            shuffle=sampler is None,
            collate_fn=self.train_collate,
            num_workers=cfg.num_workers,
        )

    def _eval_loader(self, split: str) -> DataLoader:
        if split not in self.datasets:
            raise SftlabError(f"no {split} split: data.split gives it a fraction of 0")
        ds = self.datasets[split]
        # Longest first, similar lengths together: the metrics do not depend on the order.
        order = sorted(range(len(ds)), key=ds.lengths.__getitem__, reverse=True)
        rows = torch.utils.data.Subset(ds, order)
        return DataLoader(
            rows,
            batch_size=self.config.eval_batch_size,
            sampler=distributed.eval_sampler(rows, self.trainer),  # each row on one rank
            collate_fn=self.collate,
            num_workers=self.config.num_workers,
        )

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader("validation")

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader("test")


def describe_counts(counts: pd.Series, show: int = 12) -> str:
    """Rows per label, for the log: every label when there are few, else a summary with the
    largest and smallest (52 labels printed one by one made a line nobody reads)."""
    if len(counts) <= show:
        return f"labels { ({k: int(v) for k, v in counts.items()}) }"
    ordered = counts.sort_values(ascending=False)
    top = ", ".join(f"'{k}' {int(v)}" for k, v in ordered.head(3).items())
    low = ", ".join(f"'{k}' {int(v)}" for k, v in ordered.tail(3).items())
    return f"{len(counts)} labels, largest {top}; smallest {low}"


def _names(labels: list[str], show: int = 8) -> str:
    shown = ", ".join(f"'{label}'" for label in labels[:show])
    return shown + (f" and {len(labels) - show} more" if len(labels) > show else "")


def within_positions(max_length: int, tokenizer: PreTrainedTokenizerBase) -> int:
    """``data.max_length``, lowered (with a warning) to the model's positions, which
    ``load_tokenizer`` made the tokenizer's ``model_max_length``: a longer text would index
    past the position embeddings in the middle of training."""
    limit = tokenizer.model_max_length
    if isinstance(limit, int) and 0 < limit < max_length:
        log.warning(
            "data.max_length=%d is more than the model's %d positions: texts are cut at %d tokens",
            max_length,
            limit,
            limit,
        )
        return limit
    return max_length


def model_length_limit(tokenizer: PreTrainedTokenizerBase) -> int:
    """The longest input the model was trained on: the tokenizer's ``model_max_length``, a
    sentence-transformers model's own ``max_seq_length`` (all-MiniLM-L6-v2: 256 of its 512
    positions), and never more than ``AUTO_CAP``."""
    limits = [AUTO_CAP]
    if isinstance(tokenizer.model_max_length, int) and tokenizer.model_max_length > 0:
        limits.append(tokenizer.model_max_length)
    st_config = Path(str(tokenizer.name_or_path)) / "sentence_bert_config.json"
    if st_config.is_file():
        with contextlib.suppress(ValueError, KeyError, TypeError):  # unreadable: no limit known
            limits.append(int(json.loads(st_config.read_text())["max_seq_length"]))
    return min(limits)


def _natural_key(label: str) -> tuple:
    """Sort integer-like labels numerically ("2" < "10"), others alphabetically."""
    try:
        return (0, float(label), "")
    except ValueError:
        return (1, 0.0, label)
