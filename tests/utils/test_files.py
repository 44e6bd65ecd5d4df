"""One atomic write: the new file appears whole or not at all, and no temp file stays behind."""

from __future__ import annotations

import pytest

from sftlab.utils.files import atomic_path, write_json


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
