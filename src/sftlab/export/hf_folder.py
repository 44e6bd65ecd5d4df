"""Write the trained model as a plain Hugging Face folder (loads with pipeline(), no sftlab)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from sftlab.data.tables import write_table
from sftlab.models.backbone import quiet_loading
from sftlab.tasks.build import export_extra
from sftlab.utils.files import atomic_dir, commit_dir


def export_model(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    target: Path,
    extra: dict[str, Any] | None = None,
    card: str | None = None,
) -> Path:
    """Save weights (safetensors), config with id2label/label2id, tokenizer, and the model
    card (``README.md``, see ``sftlab.export.model_card``) into ``target``."""
    tmp = atomic_dir(target)
    with quiet_loading():
        model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    if extra:
        (tmp / "sftlab.json").write_text(
            json.dumps(extra, indent=2, default=str, ensure_ascii=False), encoding="utf-8"
        )
    if card:
        (tmp / "README.md").write_text(card, encoding="utf-8")
    commit_dir(tmp, target)
    return target


def write_splits(
    frames: dict[str, pd.DataFrame], target: Path, text_column: str, label_column: str
) -> None:
    """The rows of each split (``<split>.csv``, the data config's column names): predict.py
    on ``validation.csv`` reproduces the stored val/* metrics."""
    for name, frame in frames.items():
        part = frame[["text", "label"]].rename(columns={"text": text_column, "label": label_column})
        write_table(part, target / f"{name}.csv")


def model_extra(cfg: Any, data_cfg: Any, module: Any, labels: list[str]) -> dict[str, Any]:
    """``sftlab.json`` of a classifier's ``model/`` (predict.py and serve.py read it)."""
    return {
        "labels": labels,
        "max_length": data_cfg.max_length,
        "max_chars": data_cfg.max_chars,  # predict.py and serve.py cut texts as training did
        **export_extra(module, data_cfg),
        "text_column": data_cfg.text_column,
        "cleaning": list(cfg.data.get("cleaning") or []),
        "precision": str(cfg.trainer.get("precision", "32-true")),  # predict.py follows it
    }
