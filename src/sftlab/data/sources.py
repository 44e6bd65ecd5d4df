"""Where rows come from: the user's files, a ``save_to_disk`` folder, a hub dataset or a
packaged set, as one pandas DataFrame per split that the source gives.

Every frame gets a ``_row`` column: the row number an error message names (for CSV/TSV the
line as a spreadsheet shows it, header = 1; for JSONL the line; otherwise the 1-based record).
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from sftlab.data.packaged import PACKAGED, load_airline_sentiment, load_sms_spam  # noqa: F401
from sftlab.data.tables import first_row, read_table
from sftlab.utils.errors import SftlabError
from sftlab.utils.files import reading
from sftlab.utils.paths import hub_reachable

log = logging.getLogger(__name__)

# Split names other tools use for the same thing.
SPLIT_ALIASES = {
    "train": ("train",),
    "validation": ("validation", "valid", "val", "dev"),
    "test": ("test",),
}


@dataclass
class SplitRows:
    """One split as the source gives it."""

    frame: pd.DataFrame
    where: str
    """The file (or hub name and split) that error messages name."""
    label_names: list[str] | None = None
    """The label order a ``datasets`` ClassLabel feature declares, if any."""


def read_file(path: str | Path, encoding: str = "utf-8", key: str = "data.path") -> pd.DataFrame:
    """A data file as ``read_table`` reads it (predict reads its input the same way), with a
    ``_row`` column."""
    df = read_table(path, encoding, key)
    start = first_row(Path(path))
    df["_row"] = range(start, start + len(df))
    return df


def _dataset_dict_splits(dd, where: str) -> dict[str, SplitRows]:
    """``datasets`` Dataset / DatasetDict -> our split names, ClassLabel ids -> names."""
    from datasets import Dataset

    if isinstance(dd, Dataset):
        dd = {"train": dd}
    found = {}
    for ours, aliases in SPLIT_ALIASES.items():
        name = next((a for a in aliases if a in dd), None)
        if name is not None:
            found[ours] = name
    if "train" not in found:
        raise SftlabError(
            f"{where} has no 'train' split (it has {', '.join(dd)}): save the training rows as 'train'"
        )
    out = {}
    for ours, name in found.items():
        ds = dd[name]
        df = ds.to_pandas()
        class_names, unlabelled = None, False
        for column, feature in ds.features.items():
            names = getattr(feature, "names", None)
            # A ClassLabel: ids -> names, -1 (unlabelled) -> missing.
            if names and column in df.columns:
                df[column] = df[column].map(
                    lambda i, names=names: names[i] if 0 <= i < len(names) else None
                )
                class_names = class_names or list(names)
                if ours != "train" and len(df) and df[column].isna().all():
                    unlabelled = True
        if unlabelled:  # e.g. GLUE's test splits: labels hidden as -1
            log.warning("%s[%s] has no labels: making the %s split from train", where, name, ours)
            continue
        df["_row"] = range(1, len(df) + 1)
        out[ours] = SplitRows(df, f"{where}[{name}]", class_names)
    return out


def load_disk_folder(path: Path) -> dict[str, SplitRows]:
    from datasets import load_from_disk

    with reading(path, "point data.path at a save_to_disk folder you can read"):
        try:
            dd = load_from_disk(str(path))
        except (FileNotFoundError, ValueError) as e:
            raise SftlabError(
                f"{path} is a folder but not one written by datasets' save_to_disk ({type(e).__name__}): "
                f"point data.path at a file or such a folder"
            ) from None
    return _dataset_dict_splits(dd, str(path))


@contextmanager
def _offline_unless_reachable(timeout: float = 3.0):
    """Offline mode for the duration when the hub does not answer: fail (or use the local
    cache) at once instead of retrying for minutes."""
    import datasets
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE or hub_reachable(timeout):
        yield
        return
    saved = constants.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = datasets.config.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE = saved


def load_hub(name: str, config: str | None) -> dict[str, SplitRows]:
    """A dataset from the hub (or the local ``datasets`` cache); one line when unreachable."""
    if not name:
        raise SftlabError("data.source=hub needs data.path=<dataset name>")
    import datasets

    datasets.logging.set_verbosity_error()
    try:
        with _offline_unless_reachable():
            dd = datasets.load_dataset(name, config)
    except Exception as e:  # noqa: BLE001 - datasets raises many types for "not reachable / not found"
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise SftlabError(
            f"cannot load hub dataset '{name}'{f' ({config})' if config else ''}: {first} -- "
            f"where you have network run datasets.load_dataset(...).save_to_disk(dir), then pass "
            f"data=files data.path=dir"
        ) from None
    return _dataset_dict_splits(dd, f"hub:{name}")


def load_splits(
    source: str,
    path: str | None = None,
    encoding: str = "utf-8",
    validation_path: str | None = None,
    test_path: str | None = None,
    hub_config: str | None = None,
) -> dict[str, SplitRows]:
    """The splits ``data.source`` gives: always ``train``, maybe ``validation`` and ``test``."""
    if source == "hub":
        splits = load_hub(path or "", hub_config)
    elif source == "files":
        if not path:
            raise SftlabError(
                "data=files needs data.path=<your CSV/TSV/JSON/JSONL/parquet file or folder>"
            )
        p = Path(path).expanduser()
        if p.is_dir():
            splits = load_disk_folder(p)
        else:
            splits = {"train": SplitRows(read_file(p, encoding), str(p))}
    elif source in PACKAGED:
        df = PACKAGED[source][0]()
        df["_row"] = range(1, len(df) + 1)
        splits = {"train": SplitRows(df, source)}
    else:
        raise SftlabError(
            f"unknown data.source '{source}': use 'files', 'hub' or one of {', '.join(sorted(PACKAGED))}"
        )
    for name, extra in (("validation", validation_path), ("test", test_path)):
        if extra:
            key = f"data.{name}_path"
            if name in splits:
                raise SftlabError(
                    f"{key} is set but {splits[name].where} already has a {name} split: unset {key}"
                )
            splits[name] = SplitRows(
                read_file(extra, encoding, key=key), str(Path(extra).expanduser())
            )
    return splits


def load_rows(source: str, path: str | None = None, encoding: str = "utf-8") -> pd.DataFrame:
    """The training rows of a source (kept for callers that want one frame)."""
    return load_splits(source, path, encoding)["train"].frame


def require_columns(df: pd.DataFrame, columns: dict[str, str], where: str) -> None:
    """Fail with the list of existing columns when a configured column is missing."""
    for key, column in columns.items():
        if column not in df.columns:
            existing = ", ".join(str(c) for c in df.columns if c != "_row")
            raise SftlabError(
                f"{where}: column '{column}' (data.{key}) not found; columns are: {existing} "
                f"(set data.{key} to one of them)"
            )
