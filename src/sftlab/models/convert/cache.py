"""Packed model files (GGUF, E5S1) converted once into plain Hugging Face folders in a cache dir,
shared by later runs, sweep jobs and DDP ranks."""

from __future__ import annotations

import hashlib
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

from sftlab.utils.distributed import build_once
from sftlab.utils.files import atomic_dir, commit_dir

log = logging.getLogger(__name__)


def cache_folder(source: Path, cache_dir: str | None) -> Path:
    """Where the folder converted from ``source`` lives: keyed by the file's path, size and
    mtime, so an edited file is converted again."""
    stat = source.stat()
    key = hashlib.sha256(f"{source}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    return Path(cache_dir or "~/.cache/sftlab").expanduser() / "models" / f"{source.stem}-{key}"


def convert_once(target: Path, build: Callable[[Path], None]) -> Path:
    """``target``, made by ``build(folder)`` the first time it is asked for. A file lock lets
    one process build while the others wait and then find it; the folder is filled under a temp
    name and moved into place whole, so ``target`` existing means complete."""
    if target.is_dir():
        log.info("model: converted folder from cache %s", target)
        return target
    with build_once(target.with_name(f"{target.name}.lock")):
        if not target.is_dir():  # not built by another process while this one waited
            tmp = atomic_dir(target)
            try:
                build(tmp)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            commit_dir(tmp, target)
    return target
