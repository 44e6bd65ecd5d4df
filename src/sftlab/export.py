"""Write the trained model as a plain Hugging Face folder (loads with pipeline(), no sftlab)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from transformers import PreTrainedModel, PreTrainedTokenizerBase


def atomic_dir(target: Path) -> Path:
    """A sibling temp folder to fill, then move into place with ``commit_dir``."""
    tmp = target.with_name(f".{target.name}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    return tmp


def commit_dir(tmp: Path, target: Path) -> None:
    if target.exists():
        shutil.rmtree(target)
    tmp.rename(target)


def export_model(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    target: Path,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Save weights (safetensors), config with id2label/label2id, and tokenizer into ``target``."""
    tmp = atomic_dir(target)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    if extra:
        (tmp / "sftlab.json").write_text(json.dumps(extra, indent=2, default=str))
    commit_dir(tmp, target)
    return target


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write JSON through a temp file so a crash never leaves half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    tmp.replace(path)
