"""Full fine-tuning speed: the Hugging Face Trainer vs sftlab's default run, same model and data.

Both in one process, one after the other, on the packaged MiniLM and the same stratified
subsample of airline_sentiment's training split (seed 42), one epoch each. The Trainer gets
the issue's reference recipe (lr 5e-5, batch 32, dynamic padding, fp32); sftlab runs its
defaults (bf16 autocast, length-grouped batches of 32). Writes
bench/results/full_finetune_speed.{json,md}.

    python bench/full_finetune_speed.py                 # 2,000 training tweets
    python bench/full_finetune_speed.py --train-size 4000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch  # noqa: E402

# The shared set-up (sources on the path, offline, quiet) and helpers of the head-only bench.
from head_only_speed import RESULTS, compose_train, cpu_seconds

from sftlab.data.datamodule import DataConfig, TextClassificationDataModule  # noqa: E402
from sftlab.models.backbone import load_model, load_tokenizer  # noqa: E402
from sftlab.train import train  # noqa: E402


def hf_trainer(cfg, workdir: Path) -> dict:
    """AutoModelForSequenceClassification + Trainer.train(), fp32, random batches."""
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

    tokenizer = load_tokenizer(cfg.model)
    dm = TextClassificationDataModule(
        DataConfig.from_dict(dict(cfg.data)), tokenizer, seed=cfg.seed
    )
    dm.setup("fit")
    train_ds = dm.datasets["train"]
    model = load_model(cfg.model, dm.label_names, tokenizer)
    args = TrainingArguments(
        output_dir=str(workdir),
        learning_rate=5e-5,
        per_device_train_batch_size=32,
        num_train_epochs=1,
        warmup_steps=0.06,  # a float < 1 is a fraction of the steps (transformers 5)
        weight_decay=0.01,
        save_strategy="no",
        eval_strategy="no",
        report_to=[],
        logging_strategy="no",
        use_cpu=True,
        dataloader_num_workers=0,
        seed=cfg.seed,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train_ds,
        data_collator=DataCollatorWithPadding(tokenizer),
    )
    wall, cpu = time.perf_counter(), cpu_seconds()
    trainer.train()
    wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
    return {
        "train_rows": len(train_ds),
        "wall_s": wall,
        "cpu_s": cpu,
        "samples_per_s": len(train_ds) / wall,
    }


def sftlab_default(overrides: list[str], workdir: Path) -> dict:
    cfg = compose_train([*overrides, "trainer.max_epochs=1", "test=false", "export=false"], workdir)
    metrics = train(cfg)
    # fit_seconds includes data setup, model load and one validation pass: a conservative time.
    rows = int(metrics["train_rows"])
    return {
        "train_rows": rows,
        "wall_s": metrics["fit_seconds"],
        "samples_per_s": rows / metrics["fit_seconds"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-size", type=int, default=2000)
    args = parser.parse_args()
    torch.manual_seed(0)
    overrides = [
        "trainer=cpu",
        "trainer.enable_progress_bar=false",
        "logger=csv",
        f"data.train_size={args.train_size}",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        hf = hf_trainer(compose_train(overrides, tmp / "hf"), tmp / "hf")
        cpu = cpu_seconds()
        ours = sftlab_default(overrides, tmp / "sftlab")
        ours["cpu_s"] = cpu_seconds() - cpu
    result = {
        "what": "full fine-tuning, packaged MiniLM, airline_sentiment train subsample, 1 epoch",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
        "hf_trainer": hf,
        "sftlab": ours,
        "speedup_wall": hf["wall_s"] / ours["wall_s"],
        "speedup_cpu": hf["cpu_s"] / ours["cpu_s"],
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "full_finetune_speed.json").write_text(json.dumps(result, indent=2))
    md = [
        "# Full fine-tuning speed vs the Hugging Face Trainer",
        "",
        f"{result['what']} ({hf['train_rows']} rows); {result['machine']}.",
        "",
        "| | wall s | CPU s | samples/s |",
        "|---|---|---|---|",
        f"| HF Trainer (fp32, random batches) | {hf['wall_s']:.1f} | {hf['cpu_s']:.1f} | {hf['samples_per_s']:.1f} |",
        f"| sftlab default (bf16, length-grouped; incl. setup + 1 validation) | {ours['wall_s']:.1f} | {ours['cpu_s']:.1f} | {ours['samples_per_s']:.1f} |",
        "",
        f"Speed-up: **{result['speedup_wall']:.2f}x** wall, {result['speedup_cpu']:.2f}x CPU time.",
    ]
    (RESULTS / "full_finetune_speed.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
