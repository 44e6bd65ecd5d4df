"""Write the trained model as a plain Hugging Face folder (loads with pipeline(), no sftlab)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pandas as pd
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from sftlab.data.tables import write_table
from sftlab.tasks.build import build_module, export_extra
from sftlab.utils.errors import SftlabError
from sftlab.utils.files import atomic_dir, commit_dir
from sftlab.utils.secrets import masked


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
        **export_extra(module, data_cfg),
        "text_column": data_cfg.text_column,
        "cleaning": list(cfg.data.get("cleaning") or []),
    }


def export_from_checkpoint(run: str | Path, checkpoint: str = "best") -> Path:
    """Rebuild the run's model from its config, load ``checkpoints/<checkpoint>.ckpt`` and
    write ``<run>/model`` (the old folder is replaced only once the new one is complete)."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from sftlab import strategies
    from sftlab.config.data import DataConfig
    from sftlab.export.model_card import model_card
    from sftlab.models.backbone import load_model, load_tokenizer
    from sftlab.models.causal import resolved_model_cfg
    from sftlab.training import resume
    from sftlab.training.features import CachedHead, split_model

    run_dir = Path(run)
    ckpt = run_dir / "checkpoints" / f"{checkpoint}.ckpt"
    if not (run_dir / "config.yaml").is_file() or not ckpt.is_file():
        raise SftlabError(
            f"run={run_dir} needs config.yaml and {ckpt.relative_to(run_dir)}: pass a run dir "
            f"that trained at least one epoch"
        )
    cfg = OmegaConf.load(run_dir / "config.yaml")
    data_cfg = DataConfig.from_dict(OmegaConf.to_container(cfg.data, resolve=True))
    if data_cfg.task == "generation":
        raise SftlabError("format=hf re-exports classifiers; for data.task=generation train again")
    labels = resume.read_state(run_dir).get("labels")
    if not labels:
        raise SftlabError(f"{run_dir / resume.RUN_FILE} records no labels: train the run again")
    model_cfg = resolved_model_cfg(OmegaConf.to_container(cfg.model, resolve=True))
    tokenizer = load_tokenizer(model_cfg)
    model = instantiate(cfg.strategy.apply)(load_model(model_cfg, labels, tokenizer))
    trained = CachedHead(*split_model(model)[1:]) if cfg.strategy.get("cache_features") else model
    module = build_module(cfg, data_cfg, trained, labels, optimizer=None)
    resume.load_weights(module, ckpt)
    metrics_file = run_dir / "metrics.json"
    metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
    target = export_model(
        strategies.prepare_for_export(model),
        tokenizer,
        run_dir / "model",
        extra=model_extra(cfg, data_cfg, module, labels),
        card=model_card(masked(OmegaConf.to_container(cfg, resolve=True)), metrics, labels),
    )
    print(f"wrote {target} from {ckpt}")
    return target


def main(argv: list[str] | None = None) -> None:
    """``python -m sftlab.export.hf_folder run=<run dir> format=onnx [opset=17] [split=test]``, or
    ``format=hf``: ``<run>/model`` again from ``checkpoints/best.ckpt``."""
    from sftlab.utils.cli import run_or_exit

    run_or_exit(_export_cli, sys.argv[1:] if argv is None else argv, None)


EXPORT_DEFAULTS = {
    "run": None,  # a run dir (or an exported model folder)
    "format": "onnx",  # onnx: model.onnx checked against PyTorch; hf: model/ again from checkpoints/best.ckpt
    "output": None,  # null = <run>/onnx
    "opset": 17,  # ONNX opset; 17 runs on onnxruntime >= 1.13
    "split": "test",  # the rows (<run>/data/<split>.csv) on which ONNX and PyTorch logits are compared
    "atol": 1e-4,  # the largest allowed |logit difference|; the export fails beyond it
}


def _export_cli(argv: list[str]) -> Path:
    from omegaconf import OmegaConf

    from sftlab.export.onnx import export_onnx

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
            "missing run=<run dir>: python -m sftlab.export.hf_folder run=outputs/<date>/<time> format=onnx"
        )
    if cfg.format == "hf":
        return export_from_checkpoint(cfg.run)
    if cfg.format != "onnx":
        raise SftlabError(f"unknown format={cfg.format}: use format=onnx or format=hf")
    return export_onnx(cfg.run, cfg.output, opset=cfg.opset, split=cfg.split, atol=cfg.atol)


if __name__ == "__main__":
    main()
