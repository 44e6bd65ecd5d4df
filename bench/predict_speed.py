"""Batch prediction speed: sftlab's predictor (PyTorch; onnxruntime; onnxruntime int8) against
``transformers.pipeline("text-classification")`` on the same exported model, the same texts
(a run's saved test split) and this machine, in one process. Texts per second as ratios to the
pipeline; each one's labels compared with the pipeline's and its accuracy on the split.

    python bench/predict_speed.py --run outputs/<date>/<time>
    # -> bench/results/predict_speed.json and .md

The ONNX files are the run's own (``<run>/onnx/``, exported with ``quantize=int8`` when
missing, as ``predict.py backend=onnx quantize=int8`` does); their one-time export is timed
apart. Every timing is the best of ``--repeats`` passes over all texts, after a warm-up batch.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from omegaconf import OmegaConf  # noqa: E402
from transformers import pipeline  # noqa: E402

from sftlab.data.tables import read_table  # noqa: E402
from sftlab.export.onnx import onnx_dir, onnx_model  # noqa: E402
from sftlab.inference.backends import OnnxBackend  # noqa: E402
from sftlab.inference.frames import classification_frame  # noqa: E402
from sftlab.inference.predictor import load_predictor, locate  # noqa: E402
from sftlab.utils.hardware import cpu_name  # noqa: E402

OUT = ROOT / "bench" / "results" / "predict_speed"


def best_of(repeats: int, fn) -> tuple[float, list[str]]:
    """(best wall seconds, labels of the last pass)."""
    best, labels = float("inf"), []
    for _ in range(repeats):
        start = time.perf_counter()
        labels = fn()
        best = min(best, time.perf_counter() - start)
    return best, labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, required=True, help="a classification run dir")
    parser.add_argument("--split", default="test", help="<run>/data/<split>.csv (default: test)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    model_dir, run_cfg = locate(args.run)
    data_cfg = (run_cfg or {}).get("data") or {}
    df = read_table(args.run / "data" / f"{args.split}.csv")
    texts = df[data_cfg.get("text_column", "text")].fillna("").astype(str).tolist()
    truth = np.asarray(df[data_cfg.get("label_column", "label")].astype(str).tolist())
    predictor = load_predictor(args.run, device="cpu")
    bs = args.batch_size

    start = time.perf_counter()
    fresh = not (onnx_dir(args.run) / "model.int8.onnx").is_file()
    int8_path = onnx_model(args.run, "int8")
    export_s = time.perf_counter() - start if fresh else None
    fp32_path = int8_path.with_name("model.onnx")

    pipe = pipeline("text-classification", model=str(model_dir), device=-1)
    tok = {"truncation": True, "max_length": predictor.max_length}

    def pipe_labels(**kw):
        return lambda: [o["label"] for o in pipe(texts, **tok, **kw)]

    def sftlab_labels(p):
        return lambda: classification_frame(p, texts, bs)["pred_label"].tolist()

    contenders = {
        "pipeline() (default: one text per call)": pipe_labels(),
        f"pipeline(batch_size={bs})": pipe_labels(batch_size=bs),
        "sftlab predict, backend=torch": sftlab_labels(predictor),
        "sftlab predict, backend=onnx": sftlab_labels(
            replace(predictor, backend=OnnxBackend(fp32_path))
        ),
        "sftlab predict, backend=onnx quantize=int8": sftlab_labels(
            replace(predictor, backend=OnnxBackend(int8_path))
        ),
    }
    for fn in contenders.values():  # warm-up: one batch each (first-call allocations, caches)
        texts_all, texts[:] = list(texts), texts[:bs]
        fn()
        texts[:] = texts_all

    rows, reference = [], None
    for name, fn in contenders.items():
        seconds, labels = best_of(args.repeats, fn)
        labels = np.asarray(labels)
        if reference is None:
            reference = labels
        rows.append(
            {
                "how": name,
                "seconds": round(seconds, 2),
                "texts_per_s": round(len(texts) / seconds, 1),
                "accuracy": round(float((labels == truth).mean()), 4),
                "same_label_as_pipeline": round(float((labels == reference).mean()), 4),
            }
        )
        print(f"{name}: {seconds:.1f} s, {len(texts) / seconds:.0f} texts/s", flush=True)
    base = rows[0]["seconds"]
    batched = rows[1]["seconds"]
    for r in rows:
        r["x_pipeline"] = round(base / r["seconds"], 2)
        r["x_pipeline_batched"] = round(batched / r["seconds"], 2)

    result = {
        "date": dt.date.today().isoformat(),
        "run": str(args.run),
        "split": f"{args.split}.csv ({len(texts)} texts, median {int(np.median([len(t) for t in texts]))} chars)",
        "model": str(OmegaConf.select(OmegaConf.create(run_cfg or {}), "model.name") or model_dir),
        "max_length": predictor.max_length,
        "batch_size": bs,
        "repeats": args.repeats,
        "machine": f"{cpu_name()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads",
        "load_1min_at_start": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "onnxruntime": __import__("onnxruntime").__version__,
            "transformers": __import__("transformers").__version__,
        },
        "onnx_export_s": None if export_s is None else round(export_s, 1),
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(table(result))
    print(table(result))


def table(r: dict) -> str:
    lines = [
        "# Batch prediction: sftlab against transformers.pipeline()",
        "",
        f"`python bench/predict_speed.py --run <run>`: the same exported model ({r['model']}, "
        f"max_length {r['max_length']}), the same texts ({r['split']}), one process, "
        f"{r['machine']}; best of {r['repeats']} passes after a warm-up batch. "
        f"{r['date']}; torch {r['versions']['torch']}, onnxruntime {r['versions']['onnxruntime']}, "
        f"transformers {r['versions']['transformers']}.",
        "",
        "| how | seconds | texts/s | x pipeline() | x pipeline(batch_size) | accuracy | same label as pipeline() |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in r["rows"]:
        lines.append(
            f"| {row['how']} | {row['seconds']} | {row['texts_per_s']} | {row['x_pipeline']} | "
            f"{row['x_pipeline_batched']} | {row['accuracy']:.4f} | "
            f"{row['same_label_as_pipeline']:.4f} |"
        )
    if r.get("onnx_export_s") is not None:
        lines += [
            "",
            f"The one-time ONNX export and int8 quantization took {r['onnx_export_s']} s.",
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
