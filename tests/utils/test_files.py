"""One atomic write: the new file appears whole or not at all, and no temp file stays behind;
one guarded read: a file fault is one line."""

from __future__ import annotations

import gzip
import lzma
import zipfile
import zlib

import pytest

from sftlab.utils.errors import SftlabError
from sftlab.utils.files import atomic_path, reading, write_json


def test_a_failed_write_keeps_the_old_file_and_no_temp(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old")
    with pytest.raises(OSError, match="disk full"), atomic_path(path) as tmp:
        tmp.write_text("half")
        raise OSError("disk full")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_a_finished_write_replaces_the_file(tmp_path):
    path = tmp_path / "metrics.json"
    write_json(path, {"a": 1})
    write_json(path, {"a": "é"})
    assert path.read_text(encoding="utf-8") == '{\n  "a": "é"\n}'
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


# -- reading: a file fault is one line naming the file, the cause and the fix -----------------
FAULTS = [
    (PermissionError(13, "Permission denied"), "permission denied: make it readable (chmod a+r"),
    (FileNotFoundError(2, "No such file or directory"), "no such file: "),
    (IsADirectoryError(21, "Is a directory"), "it is a folder, not a file: "),
    (EOFError("Compressed file ended before the end-of-stream marker was reached"), "truncated"),
    (zlib.error("Error -3 while decompressing data"), "it is truncated or corrupt (Error -3"),
    (zipfile.BadZipFile("File is not a zip file"), "it is truncated or corrupt (File is not"),
    (lzma.LZMAError("Corrupt input data"), "it is truncated or corrupt (Corrupt input data)"),
    (gzip.BadGzipFile("Not a gzipped file (b'te')"), "it is truncated or corrupt (Not a gzip"),
    (OSError(5, "Input/output error"), "Input/output error: "),
    (LookupError("unknown encoding: klingon"), "unknown encoding: klingon: set data.encoding"),
]


@pytest.mark.parametrize(("fault", "cause"), FAULTS, ids=[type(f).__name__ for f, _ in FAULTS])
def test_a_read_fault_is_one_line_naming_the_file_and_the_fix(fault, cause, tmp_path):
    path = tmp_path / "rows.csv"
    with (
        pytest.raises(SftlabError) as err,
        reading(path, "set data.path to another file", encoding_key="data.encoding"),
    ):
        raise fault
    message = str(err.value)
    assert message.startswith(f"cannot read {path}: ") and cause in message
    assert "\n" not in message
    if not isinstance(fault, LookupError):
        assert message.endswith("set data.path to another file")


def test_other_errors_pass_through_unless_named_corrupt(tmp_path):
    with pytest.raises(RuntimeError), reading(tmp_path / "x", "fix it"):
        raise RuntimeError("a bug, not a file fault")
    checkpoint = reading(tmp_path / "x", "fix it", what="the checkpoint", corrupt=(RuntimeError,))
    with (
        pytest.raises(SftlabError, match=r"cannot read the checkpoint .*x: it is truncated"),
        checkpoint,
    ):
        raise RuntimeError("PytorchStreamReader failed reading zip archive")
    with pytest.raises(SftlabError, match="^own message$"), reading(tmp_path / "x", "fix it"):
        raise SftlabError("own message")
