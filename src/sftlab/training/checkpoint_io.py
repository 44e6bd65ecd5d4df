"""Checkpoints written straight to disk: atomic like Lightning's default, without its RAM copy.

Lightning's ``TorchCheckpointIO`` serialises the whole checkpoint into a ``BytesIO`` and then
writes ``getvalue()`` (a second copy), so every save briefly holds twice the checkpoint in
memory: about 1.1 GB for MiniLM with its AdamW states, which set the peak RSS of a run. Here
``torch.save`` streams into a temp file beside the target, renamed over it when complete.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from sftlab.utils.files import atomic_path


class StreamingCheckpointIO(TorchCheckpointIO):
    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None or "://" in str(path):  # remote storage: Lightning's way
            return super().save_checkpoint(checkpoint, path, storage_options)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Into a file object, not a path: torch's own writer turns a full disk into a
        # RuntimeError ("file write failed"); Python's raises OSError(ENOSPC), which says so.
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            torch.save(checkpoint, f)
