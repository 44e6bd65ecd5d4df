"""Tables in and out of predict: CSV, TSV, JSONL/JSON and parquet, chosen by extension."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from sftlab.utils.errors import SftlabError
from sftlab.utils.files import atomic_path

FORMATS = (".csv", ".tsv", ".jsonl", ".json", ".parquet")
# CRLF rows (RFC 4180): Python's csv writer quotes a field only when it holds a character of
# the line terminator, so with "\n" a tweet holding a bare "\r" would be split into two rows.
CSV_EOL = "\r\n"


def _format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise SftlabError(
            f"unknown table format '{suffix}' for {path}: use one of {', '.join(FORMATS)}"
        )
    return suffix


def read_table(path: str | Path, encoding: str = "utf-8") -> pd.DataFrame:
    """Read a table; cells of text files are kept as written ('NA' stays the text 'NA')."""
    path = Path(path)
    if not path.is_file():
        raise SftlabError(f"input file not found: {path}")
    fmt = _format(path)
    try:
        if fmt in (".csv", ".tsv"):
            df = pd.read_csv(
                path, sep="\t" if fmt == ".tsv" else ",", keep_default_na=False, encoding=encoding
            )
        elif fmt == ".jsonl":
            df = pd.read_json(path, lines=True, dtype=False, encoding=encoding)
        elif fmt == ".json":
            try:
                df = pd.read_json(path, dtype=False, encoding=encoding)
            except ValueError:  # one object per line
                df = pd.read_json(path, lines=True, dtype=False, encoding=encoding)
        else:
            df = pd.read_parquet(path)
    except pd.errors.EmptyDataError:
        raise SftlabError(f"input file is empty: {path}") from None
    except UnicodeDecodeError as e:
        raise SftlabError(
            f"{path} is not valid {encoding} (byte 0x{e.object[e.start]:02x} at byte {e.start}): "
            f"set encoding=<the file's encoding> (gb18030 for most Chinese exports)"
        ) from None
    except (ValueError, OSError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise SftlabError(f"cannot read {path} as {fmt[1:]}: {first}") from None
    if df.empty:
        raise SftlabError(f"input file has no rows: {path}")
    return df


def write_table(df: pd.DataFrame, path: str | Path) -> Path:
    """Write through a temp file in the same folder, then rename: never half a file."""
    path = Path(path)
    fmt = _format(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        if fmt in (".csv", ".tsv"):
            df.to_csv(tmp, sep="\t" if fmt == ".tsv" else ",", index=False, lineterminator=CSV_EOL)
        elif fmt == ".jsonl":
            df.to_json(tmp, orient="records", lines=True, force_ascii=False)
        elif fmt == ".json":
            df.to_json(tmp, orient="records", force_ascii=False, indent=1)
        else:
            df.to_parquet(tmp, index=False)
    return path
