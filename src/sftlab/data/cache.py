"""A disk cache for prepared rows and token ids, shared by later runs and sweep jobs.

Keys hash everything that changes the result: the data files' contents (or a folder's file
sizes and mtimes), the config keys that shape the rows, and for tokens the tokenizer's
vocabulary and rules and ``max_length``. Entries hold no pickles (whoever can write a shared
cache dir must not be able to run code in the readers): prepared rows are a parquet table plus
a JSON file, token ids an ``.npz`` of integer arrays read with ``allow_pickle=False``. Each
entry is written to a temp name and moved into place, so parallel sweep jobs can share one dir.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from transformers import PreTrainedTokenizerBase

from sftlab.config.data import DataConfig
from sftlab.data.packaged import PACKAGED
from sftlab.utils.distributed import build_once
from sftlab.utils.files import atomic_path, reading, write_text
from sftlab.utils.paths import resolve

log = logging.getLogger(__name__)

VERSION = 3  # bump when the cached objects change shape
ROW_KEYS = (
    "source",
    "hub_config",
    "text_column",
    "text_pair_column",
    "label_column",
    "cleaning",
    "drop_duplicates",
    "on_bad_rows",
    "max_chars",
    "encoding",
    "task",
    "label_delimiter",
)


def _hash(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32]


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _path_digest(path: str | None, key: str) -> str | None:
    """Content hash of a file; sizes and mtimes of a folder's files; None when absent.
    ``key``: the setting that names it, for the one-line error when it cannot be read."""
    if not path:
        return ""
    p = Path(resolve(path)).expanduser()
    with reading(p, f"set {key} to a complete file you can read"):
        if p.is_file():
            return _file_digest(p)
        if p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.is_file())
            return _hash(
                [(str(f.relative_to(p)), f.stat().st_size, f.stat().st_mtime_ns) for f in files]
            )
    return None


def rows_key(cfg: DataConfig) -> str | None:
    """The cache key of the prepared rows; None when the source cannot be fingerprinted."""
    if cfg.source == "files":
        paths = {
            "data.path": cfg.path,
            "data.validation_path": cfg.validation_path,
            "data.test_path": cfg.test_path,
        }
    elif cfg.source in PACKAGED:
        paths = {"data.source": PACKAGED[cfg.source][1]}
    elif cfg.source == "hub":  # the datasets library keeps its own cache of the download
        paths = {}
    else:
        return None
    digests = [_path_digest(p, key) for key, p in paths.items()]
    if None in digests:
        return None
    settings = {k: getattr(cfg, k) for k in ROW_KEYS}
    return _hash(VERSION, digests, cfg.path if cfg.source == "hub" else "", settings)


def tokens_key(rows: str, tokenizer: PreTrainedTokenizerBase, max_length: int) -> str:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        # Without the per-call state that a call with truncation=True leaves in the backend
        # (transformers sets both again on every call).
        backend.no_truncation()
        backend.no_padding()
        rules = backend.to_str()
    else:
        rules = json.dumps(tokenizer.get_vocab(), sort_keys=True)
    return _hash(
        VERSION,
        rows,
        type(tokenizer).__name__,
        hashlib.sha256(rules.encode()).hexdigest(),
        tokenizer.truncation_side,
        tokenizer.model_input_names,
        max_length,
    )


class DiskCache:
    """``get``/``put`` of prepared rows (``kind="rows"``) and token ids (``kind="tokens"``)
    under ``root``; a no-op when ``root`` is None."""

    def __init__(self, root: str | None):
        self.root = Path(root).expanduser() if root else None

    def get(self, key: str | None, kind: str) -> Any | None:
        if self.root is None or key is None:
            return None
        path = self.root / f"{key}.{kind}"
        try:
            value = _READERS[kind](path)
        except FileNotFoundError:
            return None
        except Exception as e:  # noqa: BLE001 - a truncated or stale entry is recomputed
            log.warning("ignoring unreadable cache entry %s (%s)", path, type(e).__name__)
            return None
        log.info("data: %s from cache %s", kind, path)
        return value

    def get_or_build(self, key: str | None, kind: str, build: Callable[[], Any]) -> Any:
        """The entry, built by ``build()`` and stored when missing. Processes that share the
        cache (DDP ranks, parallel sweep jobs) build it once: the first takes a file lock, the
        others wait on it and then read what it stored."""
        value = self.get(key, kind)
        if value is not None or self.root is None or key is None:
            return build() if value is None else value
        lock = self.root / f"{key}.{kind}.lock"
        try:
            lock.parent.mkdir(parents=True, exist_ok=True)
            lock.touch()
        except OSError:  # a read-only cache dir: build here, as without a cache
            return build()
        with build_once(lock):
            value = self.get(key, kind)  # built by another process while this one waited
            if value is None:
                value = build()
                self.put(key, kind, value)
        return value

    def put(self, key: str | None, kind: str, value: Any) -> None:
        if self.root is None or key is None:
            return
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            _WRITERS[kind](self.root / f"{key}.{kind}", value)
        except OSError as e:  # a read-only or full disk only costs speed
            log.warning(
                "cannot write the data cache in %s (%s): continuing without it", self.root, e
            )


def _write_rows(base: Path, entry: dict[str, Any]) -> None:
    meta = {k: v for k, v in entry.items() if k != "pool"}
    # The table first, the JSON last: a reader that finds the JSON finds a complete table.
    with atomic_path(base.with_suffix(".rows.parquet")) as tmp:
        entry["pool"].to_parquet(tmp, index=False)
    write_text(base.with_suffix(".rows.json"), json.dumps(meta))


def _read_rows(base: Path) -> dict[str, Any]:
    meta = json.loads(base.with_suffix(".rows.json").read_text())
    return {**meta, "pool": pd.read_parquet(base.with_suffix(".rows.parquet"))}


def _write_tokens(base: Path, flat: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    arrays = {
        f"{k}.{part}": a for k, pair in flat.items() for part, a in zip("vo", pair, strict=True)
    }
    with atomic_path(base.with_suffix(".tokens.npz")) as tmp, tmp.open("wb") as f:
        np.savez(f, **arrays)  # a file object: given a path, savez would append ".npz"


def _read_tokens(base: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    with np.load(base.with_suffix(".tokens.npz"), allow_pickle=False) as data:
        keys = sorted({name.rsplit(".", 1)[0] for name in data.files})
        return {k: (data[f"{k}.v"], data[f"{k}.o"]) for k in keys}


_READERS = {"rows": _read_rows, "tokens": _read_tokens}
_WRITERS = {"rows": _write_rows, "tokens": _write_tokens}
