"""``python -m sftlab.export run=<run dir> format=onnx|hf``: an ONNX model checked against
PyTorch, or ``<run>/model`` again from ``checkpoints/best.ckpt``; ``push_to_hub=<repo id>``
uploads ``<run>/model`` to the Hugging Face Hub (after ``format=hf``, if given)."""

from __future__ import annotations

import sys
from pathlib import Path

from omegaconf import OmegaConf

from sftlab.config.checks import check_repo_id
from sftlab.export.from_checkpoint import export_from_checkpoint
from sftlab.export.hub import push_model
from sftlab.export.onnx import export_onnx
from sftlab.utils.cli import run_or_exit, stopped_line
from sftlab.utils.errors import SftlabError


def main(argv: list[str] | None = None) -> None:
    """``python -m sftlab.export run=<run dir> format=onnx [opset=17] [split=test]``, or
    ``quantize=int8`` (with format=onnx), or ``format=hf``: ``<run>/model`` again from ``checkpoints/best.ckpt``, or
    ``push_to_hub=<repo id>``: ``<run>/model`` uploaded to the Hub."""
    argv = sys.argv[1:] if argv is None else argv
    run_or_exit(_export_cli, argv, None, on_stop=stopped_line("export", "run the export again"))


EXPORT_DEFAULTS = {
    "run": None,  # a run dir (or an exported model folder)
    "format": None,  # onnx: model.onnx checked against PyTorch; hf: model/ again from checkpoints/best.ckpt; null = onnx, or nothing with push_to_hub
    "push_to_hub": None,  # a Hub repo id (user/name): upload <run>/model there (after format=hf, if given)
    "output": None,  # null = <run>/onnx
    "opset": 17,  # ONNX opset; 17 runs on onnxruntime >= 1.13
    "split": "test",  # the rows (<run>/data/<split>.csv) on which ONNX and PyTorch logits are compared
    "atol": 1e-4,  # the largest allowed |logit difference|; the export fails beyond it
    "quantize": None,  # int8: also model.int8.onnx (dynamic int8), its accuracy on the split next to PyTorch's
}


def _export_cli(argv: list[str]) -> Path:
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
    fmt = cfg.format or (None if cfg.push_to_hub else "onnx")
    if fmt not in (None, "onnx", "hf"):
        raise SftlabError(f"unknown format={cfg.format}: use format=onnx or format=hf")
    if cfg.quantize and fmt != "onnx":
        raise SftlabError(f"quantize={cfg.quantize} applies to format=onnx: add format=onnx")
    if cfg.push_to_hub:
        check_repo_id(cfg.push_to_hub)  # before an export that takes minutes
    written = None
    if fmt == "hf":
        written = export_from_checkpoint(cfg.run)
    elif fmt == "onnx":
        written = export_onnx(
            cfg.run,
            cfg.output,
            opset=cfg.opset,
            split=cfg.split,
            atol=cfg.atol,
            quantize=cfg.quantize,
        )
    if cfg.push_to_hub:
        url = push_model(Path(cfg.run), cfg.push_to_hub)
        print(f"pushed {Path(cfg.run) / 'model'} to {url}")
    return written or Path(cfg.run) / "model"


if __name__ == "__main__":
    main()
