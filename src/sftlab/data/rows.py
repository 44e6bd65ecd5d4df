"""One split's raw rows -> clean rows: column mapping, label strings, cleaning, bad rows, duplicates.

Every drop is counted in a message; the messages are returned (and cached with the rows) so a
run that reuses cached rows logs the same counts.
"""

from __future__ import annotations

import pandas as pd

from sftlab.config.data import DataConfig
from sftlab.data.cleaning import clean_texts
from sftlab.data.sources import SplitRows, require_columns
from sftlab.data.targets import label_sets_as_strings
from sftlab.utils.errors import SftlabError


def label_strings(labels: pd.Series) -> pd.Series:
    """Labels as stripped strings, ``None`` where missing; 1.0 -> "1" (pandas reads an integer
    column with a gap as floats)."""
    if pd.api.types.is_float_dtype(labels):
        known = labels.dropna()
        if (known == known.round()).all():
            labels = labels.astype("Int64")
    out = labels.astype(object).where(labels.notna(), None)
    out = out.map(lambda v: None if v is None else str(v).strip())
    return out.where(out != "", None)


def _texts(column: pd.Series) -> pd.Series:
    return column.where(column.notna(), "").astype(str)


def prepare(
    split: SplitRows, cfg: DataConfig, drop_duplicates: bool | None = None
) -> tuple[pd.DataFrame, list[str]]:
    """Columns ``text`` [``text_pair``] ``label`` ``_row``: cleaned, bad rows and duplicates out."""
    where, messages = split.where, []
    columns = {"text_column": cfg.text_column, "label_column": cfg.label_column}
    if cfg.text_pair_column:
        columns["text_pair_column"] = cfg.text_pair_column
    require_columns(split.frame, columns, where)
    raw = split.frame
    labels = raw[cfg.label_column]
    if cfg.task == "multilabel":  # lists or "a|b" cells -> one canonical "a|b" string
        labels = label_sets_as_strings(labels, cfg)
    df = pd.DataFrame({"text": _texts(raw[cfg.text_column]), "label": label_strings(labels)})
    text_cols = ["text"]
    if cfg.text_pair_column:
        df["text_pair"] = _texts(raw[cfg.text_pair_column])
        text_cols.append("text_pair")
    df["_row"] = raw["_row"].to_numpy()
    if (df["text"].str.strip() == "").all():
        raise SftlabError(
            f"{where}: every text in column '{cfg.text_column}' is empty: set data.text_column "
            f"to the column holding the texts"
        )

    for col in text_cols:
        long = df[col].str.len() > cfg.max_chars
        if long.any():
            messages.append(
                f"{where}: cut {int(long.sum())} texts longer than {cfg.max_chars} characters "
                f"(data.max_chars), first at row {df.loc[long.idxmax(), '_row']}"
            )
            df.loc[long, col] = df.loc[long, col].str.slice(0, cfg.max_chars)
        if cfg.cleaning:
            df[col] = clean_texts(df[col].tolist(), cfg.cleaning, rows=df["_row"].tolist())

    df = _drop_bad(df, text_cols, cfg, where, messages)
    drop = cfg.drop_duplicates if drop_duplicates is None else drop_duplicates
    if drop:
        df = _drop_duplicates(df, text_cols, where, messages)
    else:
        _report_duplicates(df, text_cols, where, messages)
    return df.reset_index(drop=True), messages


def _drop_bad(
    df: pd.DataFrame, text_cols: list[str], cfg: DataConfig, where: str, messages: list[str]
) -> pd.DataFrame:
    config_col = {
        "text": cfg.text_column,
        "text_pair": cfg.text_pair_column,
        "label": cfg.label_column,
    }
    problems = {col: df[col].str.strip() == "" for col in text_cols}
    problems["label"] = df["label"].isna()
    bad = pd.Series(False, index=df.index)
    for col, mask in problems.items():
        if not mask.any():
            continue
        first = df.loc[mask.idxmax(), "_row"]
        what = "a missing or empty label" if col == "label" else "an empty text (after cleaning)"
        if cfg.on_bad_rows == "error":
            raise SftlabError(
                f"{where}: row {first}, column '{config_col[col]}' has {what} ({int(mask.sum())} rows "
                f"like it): fix those rows, or set data.on_bad_rows=drop to skip them"
            )
        messages.append(
            f"{where}: dropped {int(mask.sum())} rows with {what} in column '{config_col[col]}' "
            f"(first: row {first}); data.on_bad_rows=error stops instead"
        )
        bad |= mask
    return df.loc[~bad]


def _report_duplicates(
    df: pd.DataFrame, text_cols: list[str], where: str, messages: list[str]
) -> None:
    dup = df.duplicated(subset=text_cols, keep="first")
    if dup.any():
        first = df.loc[dup.idxmax(), "_row"]
        messages.append(
            f"{where}: {int(dup.sum())} exact duplicate texts (first: row {first}) kept: a given "
            f"validation or test file is used exactly as given"
        )


def _drop_duplicates(
    df: pd.DataFrame, text_cols: list[str], where: str, messages: list[str]
) -> pd.DataFrame:
    dup = df.duplicated(subset=text_cols, keep="first")
    if dup.any():
        conflicting = int((df.groupby(text_cols, sort=False)["label"].nunique() > 1).sum())
        messages.append(
            f"{where}: dropped {int(dup.sum())} exact duplicate texts (kept the first of each); "
            f"{conflicting} texts had conflicting labels (the first label kept); "
            f"data.drop_duplicates=false keeps them"
        )
    return df.loc[~dup]
