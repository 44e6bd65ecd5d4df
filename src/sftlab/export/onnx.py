"""Export a run's model to ONNX (torch.onnx, TorchScript-based exporter) and check it with onnxruntime.

``<run>/onnx/`` gets ``model.onnx`` (inputs: the tokenizer's ids and masks, dynamic batch and
sequence axes; output: ``logits``), the tokenizer, ``config.json`` (id2label) and
``export.json`` (the measured max |logit difference| to PyTorch on a split of the run).
"""

from __future__ import annotations

import inspect
import json
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import AutoModelForSequenceClassification

from sftlab.data.tables import read_table
from sftlab.inference.predictor import (
    META_FILE,
    Predictor,
    batched,
    load_predictor,
    locate,
    raw_outputs,
)
from sftlab.utils.errors import SftlabError
from sftlab.utils.files import atomic_dir, commit_dir

log = logging.getLogger(__name__)

# Texts to compare on when the run has no saved split (a bare model folder).
FALLBACK_TEXTS = [
    "The flight was delayed for three hours and nobody told us why.",
    "ok",
    "Great crew, smooth landing, thank you!",
    "Is there wifi on the 7am flight to Boston?",
]


class _Logits(torch.nn.Module):
    """The model with positional inputs and a plain tensor output, as tracing wants it."""

    def __init__(self, model: torch.nn.Module, names: list[str]):
        super().__init__()
        self.model = model
        self.names = names

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.model(**dict(zip(self.names, inputs, strict=True))).logits


def input_names(model: torch.nn.Module, tokenizer) -> list[str]:
    """The tokenizer outputs the model's forward takes (BERT: 3; RoBERTa, DistilBERT: 2)."""
    params = inspect.signature(model.forward).parameters
    return [n for n in tokenizer.model_input_names if n in params]


def export_onnx(
    run: str | Path,
    output: str | Path | None = None,
    opset: int = 17,
    split: str = "test",
    atol: float = 1e-4,
    batch_size: int = 32,
) -> Path:
    """Write ``model.onnx`` and check it against PyTorch on ``<run>/data/<split>.csv``."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        raise SftlabError(
            "ONNX export needs onnx and onnxruntime: pip install onnx onnxruntime"
        ) from None
    model_dir, _ = locate(run)
    predictor = load_predictor(run, device="cpu")
    run_dir = None if model_dir == Path(run) else Path(run)
    target = Path(output) if output else (run_dir / "onnx" if run_dir else model_dir / "onnx")

    # Eager attention traces into plain ops; the exported graph is checked against the
    # predictor's own (default-attention) model below.
    eager = AutoModelForSequenceClassification.from_pretrained(
        model_dir, attn_implementation="eager"
    ).eval()
    names = input_names(eager, predictor.tokenizer)
    dummy = predictor.tokenizer(
        ["a dummy text for tracing", "and a second, longer one to make padding happen"],
        padding=True,
        return_tensors="pt",
    )
    dynamic = {n: {0: "batch", 1: "sequence"} for n in names} | {"logits": {0: "batch"}}
    tmp = atomic_dir(target)
    onnx_path = tmp / "model.onnx"
    with torch.no_grad():
        torch.onnx.export(
            _Logits(eager, names),
            tuple(dummy[n] for n in names),
            str(onnx_path),
            dynamo=False,
            input_names=names,
            output_names=["logits"],
            dynamic_axes=dynamic,
            opset_version=opset,
        )
    predictor.tokenizer.save_pretrained(tmp)
    predictor.model.config.save_pretrained(tmp)
    if (model_dir / META_FILE).is_file():
        shutil.copy(model_dir / META_FILE, tmp / META_FILE)

    texts, where = _comparison_texts(run_dir, split, predictor)
    diff = max_logit_difference(onnx_path, predictor, texts, names, batch_size)
    report = {"max_abs_logit_diff": diff, "rows": len(texts), "compared_on": where, "opset": opset}
    (tmp / "export.json").write_text(json.dumps(report, indent=2))
    if not diff <= atol:
        shutil.rmtree(tmp, ignore_errors=True)
        raise SftlabError(
            f"ONNX logits differ from PyTorch by {diff:.2e} > atol={atol} on {where}: "
            f"try another opset (opset=14..18) or raise atol"
        )
    commit_dir(tmp, target)
    print(f"wrote {target / 'model.onnx'}: max |logit difference| to PyTorch {diff:.2e} on {where}")
    return target


def _comparison_texts(
    run_dir: Path | None, split: str, predictor: Predictor
) -> tuple[list[str], str]:
    path = run_dir / "data" / f"{split}.csv" if run_dir else None
    if path is None or not path.is_file():
        log.warning(
            "no %s split saved with the run: comparing ONNX on %d sample texts",
            split,
            len(FALLBACK_TEXTS),
        )
        return list(FALLBACK_TEXTS), "built-in sample texts"
    df = read_table(path)
    if predictor.text_column not in df.columns:
        raise SftlabError(
            f"{path} has no column '{predictor.text_column}' (columns: {', '.join(df.columns)})"
        )
    texts = df[predictor.text_column].fillna("").astype(str).tolist()
    return texts, f"{path} ({len(df)} rows)"


def onnx_logits(
    session, predictor: Predictor, texts: list[str], names: list[str], batch_size: int = 32
) -> np.ndarray:
    """Logits from an onnxruntime session, batched as ``predict.py`` batches."""

    def run(batch: Any) -> np.ndarray:
        return session.run(["logits"], {n: batch[n].astype(np.int64) for n in names})[0]

    return batched(predictor, texts, batch_size, run, tensors="np")


def max_logit_difference(
    onnx_path: Path, predictor: Predictor, texts: list[str], names: list[str], batch_size: int = 32
) -> float:
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    a = onnx_logits(session, predictor, texts, names, batch_size)
    b = raw_outputs(predictor, texts, batch_size)
    return float(np.abs(a - b).max())
