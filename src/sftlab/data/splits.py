"""Which rows train, validate and test: given splits kept, missing ones carved from train
(stratified and seeded; labels too rare to stratify stay in train), then the training rows
kept by ``data.train_per_class`` or ``data.train_size``."""

from __future__ import annotations

import logging

import pandas as pd

from sftlab.config.data import DataConfig
from sftlab.utils.errors import SftlabError

log = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")


def split_rows(
    given: dict[str, pd.DataFrame], config: DataConfig, seed: int, label_names: list[str]
) -> dict[str, pd.DataFrame]:
    """Given splits stay as they are; missing ones are carved from train, stratified and seeded."""
    fractions = dict(zip(SPLITS, config.split, strict=False))
    missing = [n for n in ("test", "validation") if n not in given and fractions[n] > 0]
    rest = given["train"]
    parts = {n: f for n, f in given.items() if n != "train"}
    # Only single labels can be stratified; other targets get a plain seeded split.
    stratify = config.is_classification
    kept = rest.iloc[:0]
    if missing and stratify:  # labels too rare to stratify stay in train, all of them
        rest, kept = set_rare_aside(rest, len(missing) + 1, label_names)
    remaining = fractions["train"] + sum(fractions[n] for n in missing)
    try:
        for name in missing:
            # lazy: given splits need no sklearn
            from sklearn.model_selection import train_test_split

            rest, parts[name] = train_test_split(
                rest,
                test_size=fractions[name] / remaining,
                stratify=rest["label_id"] if stratify else None,
                random_state=seed,
            )
            remaining -= fractions[name]
    except ValueError as e:
        raise SftlabError(
            f"cannot make a stratified {list(config.split)} split of {len(given['train'])} rows: {e}"
        ) from None
    parts["train"] = subsample(
        pd.concat([rest, kept]) if len(kept) else rest, config, seed, label_names
    )
    return {name: parts[name].reset_index(drop=True) for name in SPLITS if name in parts}


def set_rare_aside(
    rows: pd.DataFrame, needed: int, label_names: list[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows of labels with at least ``needed`` rows, rows of the rarer labels), with a warning
    naming the rare ones: a stratified split cannot give them a row in every split."""
    counts = rows["label_id"].value_counts()
    rare = counts[counts < needed]
    if rare.empty:
        return rows, rows.iloc[:0]
    names = ", ".join(f"'{label_names[i]}' ({n})" for i, n in rare.sort_index().items())
    log.warning(
        "%d labels have fewer than %d rows and stay in train only (no validation/test rows "
        "for them; the other labels are split stratified): %s",
        len(rare),
        needed,
        names,
    )
    is_rare = rows["label_id"].isin(rare.index)
    if is_rare.all():
        raise SftlabError(
            f"every label has fewer than {needed} rows: too few to carve validation and test "
            f"splits; give them as files (data.validation_path, data.test_path) or add rows"
        )
    return rows[~is_rare], rows[is_rare]


def subsample(
    train: pd.DataFrame, config: DataConfig, seed: int, label_names: list[str]
) -> pd.DataFrame:
    """The training rows kept by ``data.train_per_class`` or ``data.train_size`` (all by default)."""
    if config.train_per_class is not None:
        return per_class(train, config.train_per_class, seed)
    size = config.train_size
    if size is None or size == 1.0 or (isinstance(size, int) and size >= len(train)):
        if isinstance(size, int) and size > len(train):
            log.warning("data.train_size=%d > %d training rows: using all", size, len(train))
        return train
    from sklearn.model_selection import train_test_split  # lazy: only a subsample needs it

    if not config.is_classification:
        kept, _ = train_test_split(train, train_size=size, random_state=seed)
        return kept
    n_labels = train["label_id"].nunique()
    if isinstance(size, int) and size < n_labels:
        raise SftlabError(
            f"data.train_size={size} is smaller than the number of labels ({n_labels})"
        )
    rest, rare = set_rare_aside(train, 2, label_names)  # kept whole: one row cannot be stratified
    if not rare.empty:  # the rest is sampled to make up the requested size
        target = size if isinstance(size, int) else max(1, round(size * len(train)))
        size = target - len(rare)
        if size < rest["label_id"].nunique():
            raise SftlabError(
                f"data.train_size={config.train_size} leaves too few rows for the "
                f"{rest['label_id'].nunique()} common labels after the {len(rare)} rare-label "
                f"rows: raise data.train_size"
            )
    kept, _ = train_test_split(rest, train_size=size, stratify=rest["label_id"], random_state=seed)
    return pd.concat([kept, rare]) if len(rare) else kept


def per_class(train: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """``n`` rows of each label (every row of a label with fewer), drawn with the seed."""
    kept = train.sample(frac=1.0, random_state=seed).groupby("label_id").head(n)
    counts = train["label_id"].value_counts()
    short = counts[counts < n]
    log.info(
        "data.train_per_class=%d: %d training rows, %d of each of %d labels%s",
        n,
        len(kept),
        n,
        len(counts),
        f" ({len(short)} with fewer: all their rows)" if len(short) else "",
    )
    return kept
