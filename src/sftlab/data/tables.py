"""Tables in and out: CSV, TSV, JSONL/JSON and parquet, chosen by extension.

Training (``data.path``) and prediction (``input``) read through ``read_table``, so a cell means
the same to both: it is missing when it is empty or blank (or null in JSON/parquet); every other
cell is kept as written, so "NA", "null" and "N/A" are text (they are words in user data).
"""

from __future__ import annotations

import bz2
import csv
import gzip
import lzma
from pathlib import Path

import pandas as pd

from sftlab.data.cleaning import CJK
from sftlab.utils.errors import SftlabError
from sftlab.utils.files import atomic_path, reading

FORMATS = (".csv", ".tsv", ".jsonl", ".json", ".parquet")
COMPRESSION = (".gz", ".bz2", ".zip", ".xz", ".zst")  # read only
# CRLF rows (RFC 4180): Python's csv writer quotes a field only when it holds a character of
# the line terminator, so with "\n" a tweet holding a bare "\r" would be split into two rows.
CSV_EOL = "\r\n"


def table_format(path: Path) -> str:
    """The table suffix of ``path`` (``.csv`` for ``x.csv.gz``); "" when it has none."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in COMPRESSION:
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def first_row(path: Path) -> int:
    """The number messages give a table's first row: for CSV/TSV the line a spreadsheet shows
    (header = 1), otherwise the 1-based line or record."""
    return 2 if table_format(path) in {".csv", ".tsv"} else 1


def read_table(path: str | Path, encoding: str = "utf-8", key: str = "data.path") -> pd.DataFrame:
    """Read a table (optionally compressed); blank cells become missing, other cells stay as
    written. ``key``: the setting that names the file (``data.path``, ``data.test_path``,
    ``input``); messages tell how to fix it and the encoding setting beside it."""
    path = Path(path).expanduser()
    prefix = key.rpartition(".")[0]
    noun = prefix or key  # "data file", "input file"
    setting = f"{prefix}.encoding" if prefix else "encoding"
    with reading(path, f"set {key} to a complete file you can read", encoding_key=setting):
        df = _read_checked(path, encoding, key, noun, setting)
    if df.empty:
        raise SftlabError(
            f"{noun} file has a header but no rows: {path} (add rows or set {key} to another file)"
        )
    df.columns = [str(c) for c in df.columns]
    for column in df.columns:
        values = df[column]
        if values.dtype.kind not in "biufcmM":  # text (or mixed): blank strings are missing
            blank = values.map(lambda v: isinstance(v, str) and not v.strip())
            if blank.any():
                df[column] = values.mask(blank)
    return df


def _read_checked(path: Path, encoding: str, key: str, noun: str, setting: str) -> pd.DataFrame:
    """The table, or one line saying why not (missing, unknown format, empty, undecodable,
    unparsable); file faults are left to the caller's ``reading``."""
    if not path.exists():
        raise SftlabError(f"{noun} file not found: {path} (set {key} to an existing file)")
    fmt = table_format(path)
    if fmt not in FORMATS:
        folder = " or a datasets save_to_disk folder" if key == "data.path" else ""
        raise SftlabError(
            f"unknown {noun} format '{fmt or path.name}' for {path}: use one of "
            f"{', '.join(FORMATS)} (optionally compressed){folder}"
        )
    empty = f"{noun} file is empty: {path} (set {key} to a file with a header and rows)"
    if path.stat().st_size == 0:
        raise SftlabError(empty)
    try:
        return _read(path, fmt, encoding)
    except pd.errors.EmptyDataError:
        raise SftlabError(empty) from None
    except UnicodeDecodeError as e:
        raise SftlabError(_decode_error(path, fmt, encoding, e, setting)) from None
    except (ValueError, pd.errors.ParserError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise SftlabError(f"cannot read {path} as {fmt[1:]}: {first}") from None


def _read(path: Path, fmt: str, encoding: str) -> pd.DataFrame:
    if fmt in {".csv", ".tsv"}:  # only empty cells are missing, not pandas' "NA", "null"...
        sep = "\t" if fmt == ".tsv" else ","
        return pd.read_csv(path, sep=sep, encoding=encoding, keep_default_na=False, na_values=[""])
    if fmt == ".jsonl":  # dtype=False: "007" stays the text "007"
        return pd.read_json(path, lines=True, dtype=False, encoding=encoding)
    if fmt == ".json":
        try:
            return pd.read_json(path, dtype=False, encoding=encoding)
        except ValueError:  # a .json file holding one object per line
            return pd.read_json(path, lines=True, dtype=False, encoding=encoding)
    return pd.read_parquet(path)


def _decode_error(path: Path, fmt: str, encoding: str, e: UnicodeDecodeError, setting: str) -> str:
    """Name the row (and for CSV/TSV the column) holding the first undecodable byte."""
    opener = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}.get(path.suffix.lower(), open)
    where, hint = f"{path}", f"the file's encoding (e.g. {setting}=latin-1)"
    if path.suffix.lower() not in {".zip", ".zst"}:
        with opener(path, "rb") as f:
            raw = f.read()
        hint = _encoding_hint(raw, encoding) or hint
        lines = raw.split(b"\n")
        for number, line in enumerate(lines, start=1):
            try:
                line.decode(encoding)
            except UnicodeDecodeError as bad:
                where = f"{path}: row {number}"
                if fmt in {".csv", ".tsv"} and number > 1:
                    sep = "\t" if fmt == ".tsv" else ","
                    header = next(csv.reader([lines[0].decode(encoding, "replace")], delimiter=sep))
                    fields = next(csv.reader([line.decode(encoding, "replace")], delimiter=sep), [])
                    column = next(
                        (h for h, v in zip(header, fields, strict=False) if "\ufffd" in v), None
                    )
                    where += f", column '{column}'" if column else ""
                e = bad
                break
    return (
        f"{where} is not valid {encoding} (byte 0x{e.object[e.start]:02x}): set {setting} to "
        f"{hint} or re-save it as UTF-8"
    )


def _encoding_hint(raw: bytes, tried: str) -> str | None:
    """Name the encoding a Chinese file most likely has: GB18030 (a superset of GBK and GB2312,
    what Chinese Excel and WPS export) when the bytes decode as it and hold ideographs.
    Latin-1 is never suggested for those: it decodes any bytes, into mojibake."""
    high = sum(b >= 0x80 for b in raw)
    for candidate in ("gb18030", "big5"):
        if candidate == tried.lower().replace("-", "").replace("_", ""):
            continue
        try:
            text = raw.decode(candidate)
        except UnicodeDecodeError:
            continue
        # Chinese in these encodings spends two high bytes per character; Latin-1 text that
        # happens to decode (é + a letter) spends one, and is not Chinese.
        wide = sum(not c.isascii() for c in text)
        if CJK.search(text) and high >= 1.8 * wide:
            return f"{candidate} (the bytes read as Chinese text in {candidate})"
    return None


def write_table(df: pd.DataFrame, path: str | Path) -> Path:
    """Write through a temp file in the same folder, then rename: never half a file."""
    path = Path(path)
    fmt = path.suffix.lower()
    if fmt not in FORMATS:
        raise SftlabError(
            f"unknown table format '{fmt}' for {path}: use one of {', '.join(FORMATS)}"
        )
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
