"""Write the trained model as a plain Hugging Face folder (loads with pipeline(), no sftlab)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pandas as pd
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from sftlab.errors import SftlabError
from sftlab.tables import write_table


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
    card: str | None = None,
) -> Path:
    """Save weights (safetensors), config with id2label/label2id, tokenizer, and the model
    card (``README.md``, see ``sftlab.model_card``) into ``target``."""
    tmp = atomic_dir(target)
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


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write JSON through a temp file so a crash never leaves half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str, ensure_ascii=False), encoding="utf-8")
    tmp.replace(path)


def write_splits(
    frames: dict[str, pd.DataFrame], target: Path, text_column: str, label_column: str
) -> None:
    """The rows of each split (``<split>.csv``, the data config's column names): predict.py
    on ``validation.csv`` reproduces the stored val/* metrics."""
    for name, frame in frames.items():
        part = frame[["text", "label"]].rename(columns={"text": text_column, "label": label_column})
        write_table(part, target / f"{name}.csv")


def main(argv: list[str] | None = None) -> None:
    """``python -m sftlab.export run=<run dir> format=onnx [opset=17] [split=test]``."""
    from sftlab.cli import run_or_exit

    run_or_exit(_export_cli, sys.argv[1:] if argv is None else argv, None)


EXPORT_DEFAULTS = {
    "run": None,  # a run dir (or an exported model folder)
    "format": "onnx",  # onnx: the one format besides the model/ folder that train.py writes
    "output": None,  # null = <run>/onnx
    "opset": 17,  # ONNX opset; 17 runs on onnxruntime >= 1.13
    "split": "test",  # the rows (<run>/data/<split>.csv) on which ONNX and PyTorch logits are compared
    "atol": 1e-4,  # the largest allowed |logit difference|; the export fails beyond it
}


def _export_cli(argv: list[str]) -> Path:
    from omegaconf import OmegaConf

    from sftlab.onnx_export import export_onnx

    cfg = OmegaConf.create(EXPORT_DEFAULTS)
    OmegaConf.set_struct(cfg, True)
    try:
        cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(argv))
    except Exception as e:  # an unknown key or a malformed key=value
        raise SftlabError(
            f"bad argument ({str(e).splitlines()[0]}): use {', '.join(f'{k}=' for k in EXPORT_DEFAULTS)}"
        ) from None
    if not cfg.run:
        raise SftlabError(
            "missing run=<run dir>: python -m sftlab.export run=outputs/<date>/<time> format=onnx"
        )
    if cfg.format != "onnx":
        raise SftlabError(f"unknown format={cfg.format}: use format=onnx")
    return export_onnx(cfg.run, cfg.output, opset=cfg.opset, split=cfg.split, atol=cfg.atol)


if __name__ == "__main__":
    main()
