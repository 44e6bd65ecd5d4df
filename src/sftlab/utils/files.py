"""Writes that never leave half a file or a half-replaced folder behind."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any


def atomic_dir(target: Path) -> Path:
    """A sibling temp folder to fill, then move into place with ``commit_dir``."""
    tmp = target.with_name(f".{target.name}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    return tmp


def commit_dir(tmp: Path, target: Path) -> None:
    """Move the finished ``tmp`` onto ``target``; the old ``target`` is moved aside first and
    deleted only once the new one is in place, so a crash at any point keeps one of them."""
    old = target.with_name(f".{target.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if target.exists():
        target.rename(old)
    tmp.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write JSON through a temp file so a crash never leaves half a file."""
    write_text(path, json.dumps(data, indent=2, default=str, ensure_ascii=False))


def write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
