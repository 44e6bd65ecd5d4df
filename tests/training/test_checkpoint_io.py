"""Checkpoints stream to a temp file and are renamed: no in-memory copy, no half-written file."""

from __future__ import annotations

import errno
import io
import os
from pathlib import Path

import pytest
import torch

from sftlab.training import checkpoint_io
from sftlab.training.checkpoint_io import StreamingCheckpointIO


def test_saves_to_disk_not_to_a_buffer(tmp_path, monkeypatch):
    targets = []
    real_save = torch.save

    def spy(obj, f, *args, **kwargs):
        targets.append(f)
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(checkpoint_io.torch, "save", spy)
    path = tmp_path / "checkpoints" / "best.ckpt"
    StreamingCheckpointIO().save_checkpoint({"state_dict": {"w": torch.ones(3)}}, path)
    assert not any(isinstance(t, io.BytesIO) for t in targets)
    assert torch.load(path, weights_only=True)["state_dict"]["w"].tolist() == [1.0, 1.0, 1.0]
    assert [p.name for p in path.parent.iterdir()] == ["best.ckpt"]


def test_a_failed_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "best.ckpt"
    io_plugin = StreamingCheckpointIO()
    io_plugin.save_checkpoint({"step": 1}, path)

    def broken(obj, f, *args, **kwargs):
        f.write(b"half")  # the temp file, open for writing
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint_io.torch, "save", broken)
    with pytest.raises(OSError, match="disk full"):
        io_plugin.save_checkpoint({"step": 2}, path)
    assert torch.load(path, weights_only=True) == {"step": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["best.ckpt"]


def test_a_full_disk_during_a_checkpoint_is_an_oserror_that_says_so(tmp_path, monkeypatch):
    """torch.save into a path turns ENOSPC into RuntimeError('file write failed'); the checkpoint
    goes through a Python file object, whose OSError names the cause."""

    class FullDisk:
        def __init__(self, path, mode):
            Path(path).write_bytes(b"")

        def write(self, data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(checkpoint_io, "open", FullDisk, raising=False)
    path = tmp_path / "last.ckpt"
    path.write_bytes(b"previous")
    with pytest.raises(OSError) as err:
        StreamingCheckpointIO().save_checkpoint({"w": 1}, path)
    assert err.value.errno == errno.ENOSPC
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]
    assert path.read_bytes() == b"previous"
