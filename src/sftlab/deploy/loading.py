"""``load(cfg)``: the predictor that predict.py and serve.py run, on the backend asked for
(``backend=torch``: PyTorch in the run's precision; ``backend=onnx``: onnxruntime on the run's
ONNX export, exported once when missing; ``quantize=int8``: its dynamic int8 version)."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from sftlab.export.onnx import onnx_model
from sftlab.inference.backends import OnnxBackend, check_backend
from sftlab.inference.predictor import Predictor, load_predictor
from sftlab.utils.errors import SftlabError

log = logging.getLogger(__name__)


def load(cfg: Any) -> Predictor:
    """The predictor for ``cfg.run`` on ``cfg.backend`` (and ``cfg.quantize``)."""
    backend = str(cfg.get("backend") or "torch")
    quantize = cfg.get("quantize") or None
    check_backend(backend, quantize)
    device = str(cfg.get("device", "auto"))
    if backend == "torch":
        return load_predictor(cfg.run, device=device)
    if device not in ("auto", "cpu"):
        log.warning("backend=onnx runs on the CPU (onnxruntime's CPU provider), not %s", device)
    predictor = load_predictor(cfg.run, device="cpu")
    if predictor.task == "generation":
        raise SftlabError(
            f"backend={backend} runs the exported classifier, not generation: "
            f"{predictor.source} is a generation run; use backend=torch"
        )
    return replace(predictor, backend=OnnxBackend(onnx_model(cfg.run, quantize)))
