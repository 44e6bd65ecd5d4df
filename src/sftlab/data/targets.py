"""Targets of the tasks other than single-label classification: numbers and label sets.

Rows keep their label as a string (the cache and the split files stay the same shape);
``label_id`` becomes a float (regression) or a multi-hot list of floats (multi-label).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import numpy as np
import pandas as pd

from sftlab.config.data import DataConfig
from sftlab.utils.errors import SftlabError

log = logging.getLogger(__name__)

DEFAULT_DELIMITER = "|"


def delimiter(cfg: DataConfig) -> str:
    return cfg.label_delimiter or DEFAULT_DELIMITER


def label_sets_as_strings(labels: pd.Series, cfg: DataConfig) -> pd.Series:
    """A multi-label column (lists, or strings split on ``data.label_delimiter``) as one
    canonical string per row: the sorted, unique labels joined by the delimiter. An empty
    set becomes missing (a CSV cannot tell an empty set from a forgotten label)."""
    sep = delimiter(cfg)

    def canonical(value) -> str | None:
        if isinstance(value, (list, tuple, np.ndarray)):
            parts: Iterable = value
        elif value is None or (isinstance(value, float) and np.isnan(value)):
            return None
        elif cfg.label_delimiter:
            parts = str(value).split(cfg.label_delimiter)
        else:
            parts = [value]
        names = sorted({str(p).strip() for p in parts if str(p).strip()})
        return sep.join(names) or None

    return labels.map(canonical).astype(object)


def assign(
    cfg: DataConfig,
    pool: pd.DataFrame,
    given: dict[str, pd.DataFrame],
    wheres: dict[str, str],
) -> tuple[list[str], pd.DataFrame]:
    """(output names, ``pool`` with ``label_id``) for ``data.task`` regression or multilabel."""
    if cfg.task == "regression":
        return [cfg.label_column], pool.assign(label_id=_numbers(pool, cfg, wheres))
    names = _label_set_names(cfg, given, wheres)
    index = {name: i for i, name in enumerate(names)}
    sep = delimiter(cfg)

    def multi_hot(value: str) -> list[float]:
        row = [0.0] * len(names)
        for name in value.split(sep):
            row[index[name]] = 1.0
        return row

    return names, pool.assign(label_id=pool["label"].map(multi_hot))


def _numbers(pool: pd.DataFrame, cfg: DataConfig, wheres: dict[str, str]) -> pd.Series:
    values = pd.to_numeric(pool["label"], errors="coerce")
    bad = values.isna() | ~np.isfinite(values.fillna(0))
    if bad.any():
        row = pool.loc[bad.idxmax()]
        raise SftlabError(
            f"{wheres.get(row['_given'], row['_given'])}: row {row['_row']}, column "
            f"'{cfg.label_column}' has '{row['label']}', not a number: data.task=regression needs "
            f"numeric targets (fix the row or set data.label_column)"
        )
    return values.astype(float)


def _label_set_names(
    cfg: DataConfig, given: dict[str, pd.DataFrame], wheres: dict[str, str]
) -> list[str]:
    sep = delimiter(cfg)

    def found(frame: pd.DataFrame) -> set[str]:
        return {name for value in frame["label"] for name in value.split(sep)}

    train = found(given["train"])
    names = [str(x) for x in cfg.labels] if cfg.labels is not None else sorted(train)
    if len(names) < 2:
        raise SftlabError(
            f"{wheres['train']}: column '{cfg.label_column}' holds a single label {names}: "
            f"multi-label needs at least 2 (set data.label_delimiter if labels share a cell)"
        )
    for split, frame in given.items():
        unknown = sorted(found(frame) - set(names if cfg.labels is not None else train))
        if unknown:
            fix = "add it to data.labels" if cfg.labels is not None else "add training rows with it"
            raise SftlabError(
                f"{wheres[split]}: column '{cfg.label_column}' has label '{unknown[0]}' "
                f"{'not in data.labels' if cfg.labels is not None else 'never seen in training'}: {fix}"
            )
    unused = [n for n in names if n not in train]
    if unused:
        log.warning("%s: labels %s never appear in the training rows", wheres["train"], unused)
    return names


def values(frame: pd.DataFrame, task: str) -> list:
    """The ``labels`` a batch carries: class ids, floats or multi-hot float lists."""
    if task == "classification":
        return frame["label_id"].astype(int).tolist()
    if task == "regression":
        return frame["label_id"].astype(float).tolist()
    return list(frame["label_id"])
