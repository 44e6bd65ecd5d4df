"""Head-only speed: the Hugging Face Trainer with a frozen body vs sftlab's cached head-only run.

Both in one process, on the same data (airline_sentiment, 80/10/10 stratified split, seed 42)
and the same machine, one after the other. Writes bench/results/head_only_speed.{json,md}.

    python bench/head_only_speed.py                  # 3 epochs each
    python bench/head_only_speed.py --hf-max-steps 100  # time the Trainer on 100 steps and
                                                       # extrapolate its 3 epochs (CPU-bound, linear)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402

from sftlab import strategies, train  # noqa: E402
from sftlab.data.datamodule import DataConfig, TextDataModule  # noqa: E402
from sftlab.models.backbone import load_model, load_tokenizer  # noqa: E402

RESULTS = ROOT / "bench" / "results"


def cpu_seconds() -> float:
    """User + system CPU time of this process (all threads): less sensitive than wall time to
    other jobs sharing the machine."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def compose_train(overrides: list[str], output_dir: Path):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    cfg.output_dir = str(output_dir)
    return cfg


def hf_trainer_frozen(
    cfg, epochs: int, max_steps: int | None, batch_size: int, lr: float, workdir: Path
) -> dict:
    """The Hugging Face recipe: AutoModelForSequenceClassification, body frozen, Trainer.train()."""
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

    tokenizer = load_tokenizer(cfg.model)
    dm = TextDataModule(DataConfig.from_dict(dict(cfg.data)), tokenizer, seed=cfg.seed)
    dm.setup("fit")
    model = strategies.head_only(load_model(cfg.model, dm.label_names, tokenizer))
    args = TrainingArguments(
        output_dir=str(workdir / "hf"),
        num_train_epochs=epochs,
        max_steps=max_steps or -1,
        per_device_train_batch_size=batch_size,
        learning_rate=lr,
        save_strategy="no",
        eval_strategy="no",
        report_to=[],
        logging_steps=50,
        use_cpu=True,
        seed=cfg.seed,
        dataloader_num_workers=0,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=dm.datasets["train"],
        data_collator=DataCollatorWithPadding(tokenizer),
    )
    cpu = cpu_seconds()
    out = trainer.train()
    cpu = cpu_seconds() - cpu
    n_train = len(dm.datasets["train"])
    steps = out.global_step
    samples = min(steps * batch_size, n_train * epochs)
    seconds = out.metrics["train_runtime"]
    full_steps = math.ceil(n_train / batch_size) * epochs
    return {
        "train_rows": n_train,
        "epochs": epochs,
        "steps_timed": steps,
        "steps_for_epochs": full_steps,
        "train_seconds_timed": round(seconds, 1),
        "samples_per_second": round(samples / seconds, 1),
        "train_seconds_for_epochs": round(seconds * full_steps / steps, 1),
        "cpu_seconds_timed": round(cpu, 1),
        "cpu_seconds_for_epochs": round(cpu * full_steps / steps, 1),
        "extrapolated": steps < full_steps,
        "lr": lr,
        "batch_size": batch_size,
    }


def sftlab_cached(epochs: int, workdir: Path, overrides: list[str]) -> dict:
    cfg = compose_train(
        [
            "strategy=head_only",
            "model.pooling=mean",
            f"trainer.max_epochs={epochs}",
            "trainer.enable_progress_bar=false",
            "logger=csv",
            *overrides,
        ],
        workdir / "sftlab",
    )
    started, cpu = time.perf_counter(), cpu_seconds()
    metrics = train(cfg)
    cpu = cpu_seconds() - cpu
    return {
        "cpu_seconds": round(cpu, 1),
        "command": f"python train.py strategy=head_only model.pooling=mean trainer.max_epochs={epochs}",
        "wall_seconds": round(time.perf_counter() - started, 1),
        "fit_seconds_incl_data_model_features": metrics["fit_seconds"],
        "test_acc": round(metrics["test/acc"], 4),
        "test_f1_macro": round(metrics["test/f1_macro"], 4),
        "trainable_params": int(metrics["trainable_params"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument(
        "--hf-max-steps", type=int, default=None, help="time only this many Trainer steps"
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--hf-lr", type=float, default=5e-5)
    parser.add_argument(
        "--overrides", nargs="*", default=[], help="extra Hydra overrides for both runs"
    )
    parser.add_argument("--name", default="head_only_speed", help="results file stem")
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sftlab-bench-") as tmp:
        work = Path(tmp)
        base = compose_train(
            ["strategy=head_only", f"data.batch_size={args.batch_size}", *args.overrides], work
        )
        hf = hf_trainer_frozen(
            base, args.epochs, args.hf_max_steps, args.batch_size, args.hf_lr, work
        )
        ours = sftlab_cached(
            args.epochs, work, [f"data.batch_size={args.batch_size}", *args.overrides]
        )
    result = {
        "what": f"{args.epochs} epochs of head-only training, MiniLM on airline_sentiment",
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, threads {torch.get_num_threads()}",
        "load_average_at_end": os.getloadavg(),
        "hf_trainer_frozen_body": hf,
        "sftlab_cached_head_only": ours,
        "speedup": round(hf["train_seconds_for_epochs"] / ours["wall_seconds"], 2),
        "speedup_cpu_time": round(hf["cpu_seconds_for_epochs"] / ours["cpu_seconds"], 2),
        "speedup_note": "HF Trainer train_runtime (training only) / sftlab wall time of the whole train() "
        "(data, model load, feature extraction, training, test, export)",
    }
    result["overrides"] = args.overrides
    (RESULTS / f"{args.name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / f"{args.name}.md").write_text(render(result))
    print(json.dumps(result, indent=2))


def render(r: dict) -> str:
    hf, ours = r["hf_trainer_frozen_body"], r["sftlab_cached_head_only"]
    how = (
        f"extrapolated from {hf['steps_timed']} of {hf['steps_for_epochs']} steps"
        if hf["extrapolated"]
        else "measured"
    )
    return (
        f"# Head-only speed ({r['what']})\n\n"
        f"Machine: {r['machine']}; load average at the end {tuple(round(x, 1) for x in r['load_average_at_end'])}.\n\n"
        "| run | wall s for the epochs | CPU s | samples/s (wall) | test acc | test macro-F1 |\n|---|---|---|---|---|---|\n"
        f"| HF Trainer, frozen body, lr {hf['lr']} ({how}) | {hf['train_seconds_for_epochs']} | {hf['cpu_seconds_for_epochs']} | {hf['samples_per_second']} | - | - |\n"
        f"| sftlab `{ours['command']}` (whole run) | {ours['wall_seconds']} | {ours['cpu_seconds']} | "
        f"{round(hf['train_rows'] * hf['epochs'] / ours['wall_seconds'], 1)} | {ours['test_acc']} | {ours['test_f1_macro']} |\n\n"
        f"**Speed-up: {r['speedup']}x in wall time, {r['speedup_cpu_time']}x in CPU time** ({r['speedup_note']}).\n"
    )


if __name__ == "__main__":
    main()
