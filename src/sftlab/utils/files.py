"""Writes that never leave half a file or a half-replaced folder behind, and reads of the
user's files whose faults (permissions, truncation, an unknown encoding) are one line."""

from __future__ import annotations

import errno
import json
import lzma
import os
import shutil
import threading
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sftlab.utils.errors import SftlabError

# What a file that ends early or holds garbage raises from the standard library's readers
# (gzip and bz2 raise OSErrors without an errno: BadGzipFile, "Invalid data stream").
CORRUPT = (EOFError, zlib.error, zipfile.BadZipFile, lzma.LZMAError)


@contextmanager
def reading(
    path: str | Path,
    fix: str,
    *,
    what: str = "",
    encoding_key: str | None = None,
    corrupt: tuple[type[BaseException], ...] = (),
) -> Iterator[None]:
    """Read a file the user named (data, an input, a checkpoint) inside this block: a fault of
    the file rather than of its content becomes one ``SftlabError``: ``cannot read <what>
    <path>: <cause>: <fix>``. ``encoding_key``: the setting to fix for an unknown encoding;
    ``corrupt``: the reader's own exception types for a truncated or foreign file (torch's zip
    reader raises RuntimeError)."""
    try:
        yield
    except SftlabError:
        raise
    except PermissionError:
        cause, fix = "permission denied", f"make it readable (chmod a+r {path}), or {fix}"
    except FileNotFoundError:
        cause = "no such file"
    except IsADirectoryError:
        cause = "it is a folder, not a file"
    except LookupError as e:  # codecs: an encoding name Python does not know
        cause = _first_line(e)
        if encoding_key:
            fix = f"set {encoding_key} to an encoding Python knows (utf-8, latin-1, gb18030, ...)"
    except (*CORRUPT, *corrupt) as e:
        cause = f"it is truncated or corrupt ({_first_line(e)})"
    except OSError as e:
        if e.errno is None:  # gzip / bz2: not a compressed stream, or a broken one
            cause = f"it is truncated or corrupt ({_first_line(e)})"
        else:
            cause = e.strerror or _first_line(e)
    else:
        return
    raise SftlabError(f"cannot read {what}{' ' if what else ''}{path}: {cause}: {fix}") from None


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:200] if text else type(e).__name__


@contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """A temp path beside ``target`` to write (stream) into; moved onto ``target`` when the block
    ends, removed when it raises. Readers see the old file or the new one, never half of one.
    The temp name is unique per process and thread, so concurrent writers never share it."""
    target = Path(target)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | Path, data: dict[str, Any]) -> None:
    write_text(path, json.dumps(data, indent=2, default=str, ensure_ascii=False))


def overwrite_in_place(path: str | Path, text: str) -> None:
    """Write ``text`` over the existing file ``path``, in place: on a full disk, where a temp file
    cannot be written, a text no longer than the file's fits in the blocks it already has. Not
    atomic: only for a last word (a run's final status) when ``write_text`` failed."""
    data = text.encode("utf-8")
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, data)
        os.ftruncate(fd, len(data))
    finally:
        os.close(fd)


def disk_full(error: BaseException) -> OSError | None:
    """The no-space (or over-quota) ``OSError`` behind ``error``, if it or what caused it is one."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            return error
        error = error.__cause__ or error.__context__
    return None


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
