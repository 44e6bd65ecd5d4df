"""What turns one padded batch of token ids into the head's outputs: PyTorch in the run's
precision, or onnxruntime on the run's ONNX export (fp32 or dynamic int8).

A backend is a callable ``backend(batch) -> np.ndarray`` (rows x outputs) with a ``tensors``
attribute saying how the batch is padded ("pt" or "np"); ``predictor.batched`` feeds it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sftlab.utils.errors import SftlabError
from sftlab.utils.hardware import autocast_dtype, cpu_native_bf16

log = logging.getLogger(__name__)

BACKENDS = ("torch", "onnx")
QUANTIZE = (None, "int8")
ONNX_FILES = {None: "model.onnx", "int8": "model.int8.onnx"}  # in <run>/onnx/, by quantize


def check_backend(backend: str, quantize: str | None) -> None:
    """``backend=`` and ``quantize=`` in range, in one line each."""
    if backend not in BACKENDS:
        raise SftlabError(f"unknown backend={backend}: use backend=torch or backend=onnx")
    if quantize not in QUANTIZE:
        raise SftlabError(f"unknown quantize={quantize}: use quantize=int8 or leave it null")
    if quantize and backend != "onnx":
        raise SftlabError(
            f"quantize={quantize} runs on onnxruntime: add backend=onnx (PyTorch keeps the "
            f"run's precision)"
        )


def predict_dtype(precision: str | None, device: torch.device) -> torch.dtype | None:
    """The autocast dtype that follows the run's ``trainer.precision`` on ``device``, or None
    (fp32). bf16 runs only where it is fast (a CUDA device with bf16, a CPU with native bf16:
    elsewhere it is ~20x slower than fp32); fp16 only on CUDA."""
    dtype = autocast_dtype(str(precision or "32"))
    if dtype is torch.bfloat16:
        fast = torch.cuda.is_bf16_supported() if device.type == "cuda" else cpu_native_bf16()
        if fast:
            return dtype
        log.info("the run trained in %s; predicting in fp32: bf16 is slow on %s", precision, device)
        return None
    return dtype if device.type == "cuda" else None


class TorchBackend:
    """The PyTorch model, in inference mode, under the run's autocast dtype (None: fp32)."""

    tensors = "pt"

    def __init__(self, model: torch.nn.Module, dtype: torch.dtype | None = None):
        self.model = model
        self.dtype = dtype
        self.name = "torch" + ("" if dtype is None else f" ({str(dtype).split('.')[-1]})")

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.inference_mode()
    def __call__(self, batch: Any) -> np.ndarray:
        device = self.device
        with torch.autocast(device.type, dtype=self.dtype, enabled=self.dtype is not None):
            logits = self.model(**batch.to(device)).logits
        return logits.float().cpu().numpy()


class OnnxBackend:
    """An onnxruntime CPU session on an exported ``model.onnx`` (or ``model.int8.onnx``)."""

    tensors = "np"

    def __init__(self, path: Path, input_names: list[str] | None = None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self.session = ort.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as e:  # onnxruntime raises its own exception types
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise SftlabError(
                f"cannot load {path}: {first}; export it again "
                f"(python -m sftlab.export run=<run dir> format=onnx [quantize=int8])"
            ) from None
        self.names = input_names or [i.name for i in self.session.get_inputs()]
        self.name = "onnx int8" if path.name == ONNX_FILES["int8"] else "onnx"
        self.path = path

    def __call__(self, batch: Any) -> np.ndarray:
        feeds = {n: np.asarray(batch[n], dtype=np.int64) for n in self.names}
        return self.session.run(["logits"], feeds)[0].astype(np.float32, copy=False)
