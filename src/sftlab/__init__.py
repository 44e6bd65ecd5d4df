"""sftlab: supervised fine-tuning of pretrained language models (Lightning + Hydra + transformers).

The public API, imported on first use (``import sftlab`` loads no torch)::

    from sftlab import train, load_predictor, predict, export_onnx, SftlabError

    metrics = train(cfg)                         # one run from a composed Hydra config
    predictor = load_predictor("outputs/<run>")  # a run dir or an exported model folder
    frame = predict(predictor, ["great flight", "lost my bag"])  # pred_label, prob_<label>...
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# name -> "module:attribute" that defines it
_API = {
    "train": "sftlab.run:train",
    "load_predictor": "sftlab.inference.predictor:load_predictor",
    "predict": "sftlab.inference.frames:predict_frame",
    "predict_file": "sftlab.deploy.predict:predict",
    "export_model": "sftlab.export.hf_folder:export_model",
    "export_from_checkpoint": "sftlab.export.from_checkpoint:export_from_checkpoint",
    "export_onnx": "sftlab.export.onnx:export_onnx",
    "SftlabError": "sftlab.utils.errors:SftlabError",
}
__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'sftlab' has no attribute {name!r}")
    module, attribute = _API[name].split(":")
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value  # later look-ups skip this hook
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
