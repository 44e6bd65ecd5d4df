"""Export a run's model to ONNX (torch.onnx, TorchScript-based exporter) and check it with onnxruntime.

``<run>/onnx/`` gets ``model.onnx`` (inputs: the tokenizer's ids and masks, dynamic batch and
sequence axes; output: ``logits``), with ``quantize="int8"`` also ``model.int8.onnx``
(onnxruntime's dynamic quantization), the tokenizer, ``config.json`` (id2label) and
``export.json``: the measured max |logit difference| to PyTorch on a split of the run, and each
model's accuracy on it next to PyTorch's. ``onnx_model`` is what ``predict.py backend=onnx``
loads: the file, exported first when missing or older than ``model/``.
"""

from __future__ import annotations

import inspect
import json
import logging
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import AutoModelForSequenceClassification

from sftlab.data.tables import read_table
from sftlab.inference.backends import ONNX_FILES, OnnxBackend, TorchBackend, check_backend
from sftlab.inference.predictor import META_FILE, Predictor, load_predictor, locate, raw_outputs
from sftlab.utils.distributed import build_once
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
    batch_size: int = 64,  # predict.py's: int8 scales its activations per batch
    quantize: str | None = None,
) -> Path:
    """Write ``model.onnx`` and check it against PyTorch on ``<run>/data/<split>.csv``; with
    ``quantize="int8"`` also ``model.int8.onnx`` (onnxruntime's dynamic quantization). Each
    model's accuracy on the split, next to PyTorch's, goes to ``export.json``."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        raise SftlabError(
            "ONNX export needs onnx and onnxruntime: pip install onnx onnxruntime"
        ) from None
    check_backend("onnx", quantize)
    run = owning_run(run)
    model_dir, run_cfg = locate(run)
    # the reference is the fp32 model, whatever precision the run trained in
    predictor = load_predictor(run, device="cpu")
    predictor = replace(predictor, backend=TorchBackend(predictor.model))
    run_dir = None if model_dir == Path(run) else Path(run)
    target = Path(output) if output else onnx_dir(run)

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

    texts, labels, where = _comparison_rows(run_dir, run_cfg, split, predictor)
    reference = raw_outputs(predictor, texts, batch_size)
    onnx_out = raw_outputs(
        replace(predictor, backend=OnnxBackend(onnx_path, names)), texts, batch_size
    )
    diff = float(np.abs(onnx_out - reference).max())
    report: dict[str, Any] = {
        "max_abs_logit_diff": diff,
        "rows": len(texts),
        "compared_on": where,
        "opset": opset,
    }
    outputs = {"torch": reference, "onnx": onnx_out}
    if quantize == "int8":
        int8_path = quantize_int8(onnx_path)
        backend = OnnxBackend(int8_path, names)
        outputs["onnx int8"] = raw_outputs(replace(predictor, backend=backend), texts, batch_size)
        report["int8"] = {
            "file": int8_path.name,
            "max_abs_logit_diff": float(np.abs(outputs["onnx int8"] - reference).max()),
            "method": INT8_METHOD,
        }
    report |= _agreement(outputs, labels, predictor)
    (tmp / "export.json").write_text(json.dumps(report, indent=2))
    if not diff <= atol:
        shutil.rmtree(tmp, ignore_errors=True)
        raise SftlabError(
            f"ONNX logits differ from PyTorch by {diff:.2e} > atol={atol} on {where}: "
            f"export with another opset or a larger atol (python -m sftlab.export run={run} "
            f"format=onnx opset=14..18 atol=...), then predict with backend=onnx"
        )
    commit_dir(tmp, target)
    print(f"wrote {target / 'model.onnx'}: max |logit difference| to PyTorch {diff:.2e} on {where}")
    if "accuracy" in report:
        print(f"accuracy on {where}: " + accuracy_line(report))
    _warn_int8_loss(report)
    return target


# onnxruntime's dynamic quantization: int8 weights per output channel, uint8 activations
# quantized per batch; reduce_range keeps AVX2 machines (no VNNI) from saturating.
INT8_METHOD = "onnxruntime quantize_dynamic: int8 weights per channel, uint8 activations"
INT8_MAX_LOSS = 0.005  # a larger accuracy drop than PyTorch's is warned about


def quantize_int8(onnx_path: Path) -> Path:
    """``model.int8.onnx`` beside ``model.onnx``: MatMul/Gemm weights in int8."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out = onnx_path.with_name(ONNX_FILES["int8"])
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # its advice to pre-process is for static (image) quantization
    try:
        quantize_dynamic(
            str(onnx_path),
            str(out),
            weight_type=QuantType.QInt8,
            per_channel=True,
            reduce_range=True,
            op_types_to_quantize=["MatMul", "Gemm"],
        )
    finally:
        root.setLevel(level)
    return out


def owning_run(run: str | Path) -> Path:
    """``<run>/model`` -> ``<run>``: a run's model folder exports with its run (its saved test
    split, ``<run>/onnx``); any other folder stays itself."""
    path = Path(run)
    parent = path.parent
    if path.name == "model" and (parent / "config.yaml").is_file():
        return parent
    return path


def onnx_dir(run: str | Path) -> Path:
    """Where a run's ONNX export lives: ``<run>/onnx``, or ``<model folder>/onnx``."""
    run = owning_run(run)
    model_dir, _ = locate(run)
    return model_dir / "onnx" if model_dir == run else run / "onnx"


def accuracy_line(report: dict[str, Any]) -> str:
    """``torch 0.8531, onnx 0.8531, onnx int8 0.8497`` from an ``export.json``."""
    return ", ".join(f"{name} {acc:.4f}" for name, acc in report.get("accuracy", {}).items())


def _warn_int8_loss(report: dict[str, Any]) -> None:
    acc = report.get("accuracy", {})
    if "onnx int8" in acc and acc["torch"] - acc["onnx int8"] > INT8_MAX_LOSS:
        log.warning(
            "int8 loses %.1f accuracy points to PyTorch on %s (%.4f vs %.4f): use "
            "backend=onnx without quantize where that matters",
            100 * (acc["torch"] - acc["onnx int8"]),
            report["compared_on"],
            acc["onnx int8"],
            acc["torch"],
        )


def _agreement(
    outputs: dict[str, np.ndarray], labels: list[str] | None, predictor: Predictor
) -> dict[str, Any]:
    """Each model's accuracy on the split's labels (classification with a label column), and
    the share of rows where its label is PyTorch's."""
    if predictor.task != "classification":
        return {}
    names = np.asarray(predictor.labels)
    predicted = {name: names[out.argmax(axis=1)] for name, out in outputs.items()}
    report: dict[str, Any] = {
        "label_agreement": {
            name: float((pred == predicted["torch"]).mean())
            for name, pred in predicted.items()
            if name != "torch"
        }
    }
    if labels is not None:
        truth = np.asarray(labels)
        report["accuracy"] = {
            name: float((pred == truth).mean()) for name, pred in predicted.items()
        }
    return report


def _comparison_rows(
    run_dir: Path | None, run_cfg: dict[str, Any] | None, split: str, predictor: Predictor
) -> tuple[list[str], list[str] | None, str]:
    """The split's texts and (when it has them) labels as strings, and where they came from."""
    path = run_dir / "data" / f"{split}.csv" if run_dir else None
    if path is None or not path.is_file():
        log.warning(
            "no %s split saved with the run: comparing ONNX on %d sample texts",
            split,
            len(FALLBACK_TEXTS),
        )
        return list(FALLBACK_TEXTS), None, "built-in sample texts"
    df = read_table(path)
    if predictor.text_column not in df.columns:
        raise SftlabError(
            f"{path} has no column '{predictor.text_column}' (columns: {', '.join(df.columns)})"
        )
    texts = df[predictor.text_column].fillna("").astype(str).tolist()
    label_column = str(((run_cfg or {}).get("data") or {}).get("label_column") or "label")
    labels = None
    if label_column in df.columns and df[label_column].notna().all():
        labels = df[label_column].astype(str).tolist()
    return texts, labels, f"{path} ({len(df)} rows)"


def onnx_model(run: str | Path, quantize: str | None = None) -> Path:
    """The run's ONNX model for ``backend=onnx`` (``model.int8.onnx`` with ``quantize=int8``),
    exported first when it is missing or older than the run's ``model/``; one process exports
    while others starting at the same time wait for it."""
    run = owning_run(run)
    model_dir, _ = locate(run)
    target = onnx_dir(run)
    path = target / ONNX_FILES[quantize]

    def stale() -> bool:
        weights = [p.stat().st_mtime for p in model_dir.glob("*.safetensors")]
        weights += [p.stat().st_mtime for p in model_dir.glob("*.bin")]
        return not path.is_file() or path.stat().st_mtime < max(weights, default=0.0)

    if stale():
        with build_once(target.with_name(f"{target.name}.lock")):
            if stale():  # not exported by another process while this one waited
                log.info("%s missing or older than %s: exporting it (once)", path, model_dir)
                export_onnx(run, quantize=quantize)  # prints the accuracies itself
                return path
    report_path = target / "export.json"
    report = json.loads(report_path.read_text()) if report_path.is_file() else {}
    if report.get("accuracy"):
        log.info(
            "backend=onnx%s: %s; accuracy on %s: %s",
            f" quantize={quantize}" if quantize else "",
            path,
            report.get("compared_on"),
            accuracy_line(report),
        )
        if quantize:
            _warn_int8_loss(report)
    return path
