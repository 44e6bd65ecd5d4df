"""The Hugging Face Trainer baseline as one command: fine-tune, then evaluate validation and test.

The recipe sftlab is compared against at equal settings: AutoModelForSequenceClassification on
the same packaged MiniLM, the same CSV splits (already cleaned), max_length 128, dynamic padding
(DataCollatorWithPadding), batch 32, AdamW lr 1e-4 with weight decay 0.01, linear schedule with
6% warm-up, gradient clipping at 1.0. Prints one JSON line of results.

    python bench/hf_trainer.py --data DIR [--epochs 1] [--precision 32|bf16] [--group-by-length]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, required=True, help="train.csv, validation.csv, test.csv"
    )
    parser.add_argument("--model", required=True, help="a Hugging Face model folder")
    parser.add_argument("--labels", nargs="+", default=["negative", "neutral", "positive"])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--eval-batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--precision", choices=["32", "bf16"], default="32")
    parser.add_argument("--group-by-length", action="store_true")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    started = time.perf_counter()

    import numpy as np
    import pandas as pd
    import torch
    from sklearn.metrics import accuracy_score, f1_score
    from torch.utils.data import Dataset
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )

    label2id = {name: i for i, name in enumerate(args.labels)}
    tokenizer = AutoTokenizer.from_pretrained(args.model)

    class Split(Dataset):
        def __init__(self, frame: pd.DataFrame):
            enc = tokenizer(frame["text"].tolist(), truncation=True, max_length=args.max_length)
            self.ids, self.types = enc["input_ids"], enc.get("token_type_ids")
            self.labels = frame["label"].map(label2id).tolist()

        def __len__(self) -> int:
            return len(self.labels)

        def __getitem__(self, i: int) -> dict:
            item = {"input_ids": self.ids[i], "labels": self.labels[i]}
            if self.types is not None:
                item["token_type_ids"] = self.types[i]
            return item

    splits = {
        name: Split(pd.read_csv(args.data / f"{name}.csv", keep_default_na=False))
        for name in ("train", "validation", "test")
    }
    model = AutoModelForSequenceClassification.from_pretrained(
        args.model,
        num_labels=len(args.labels),
        id2label=dict(enumerate(args.labels)),
        label2id=label2id,
    )

    def scores(pred) -> dict:
        predicted = np.argmax(pred.predictions, axis=-1)
        return {
            "acc": accuracy_score(pred.label_ids, predicted),
            "f1_macro": f1_score(pred.label_ids, predicted, average="macro"),
        }

    with tempfile.TemporaryDirectory() as workdir:
        training = TrainingArguments(
            output_dir=workdir,
            learning_rate=args.lr,
            per_device_train_batch_size=args.batch_size,
            per_device_eval_batch_size=args.eval_batch_size,
            num_train_epochs=args.epochs,
            warmup_steps=0.06,  # a float < 1 is a fraction of the steps (transformers 5)
            weight_decay=0.01,
            max_grad_norm=1.0,
            bf16=args.precision == "bf16",
            train_sampling_strategy="group_by_length" if args.group_by_length else "random",
            save_strategy="no",
            eval_strategy="no",
            logging_strategy="no",
            report_to=[],
            use_cpu=not torch.cuda.is_available(),
            dataloader_num_workers=0,
            seed=args.seed,
        )
        trainer = Trainer(
            model=model,
            args=training,
            train_dataset=splits["train"],
            data_collator=DataCollatorWithPadding(tokenizer),
            compute_metrics=scores,
        )
        fit = trainer.train().metrics
        val = trainer.evaluate(splits["validation"], metric_key_prefix="val")
        test = trainer.evaluate(splits["test"], metric_key_prefix="test")
    tokens = sum(len(x) for x in splits["train"].ids) / len(splits["train"])
    samples_per_s = fit["train_samples_per_second"]
    print(
        "RESULT "
        + json.dumps(
            {
                "train_seconds": fit["train_runtime"],
                "train_samples_per_second": samples_per_s,
                "train_tokens_per_second": samples_per_s * tokens,
                "val/acc": val["val_acc"],
                "val/f1_macro": val["val_f1_macro"],
                "test/acc": test["test_acc"],
                "test/f1_macro": test["test_f1_macro"],
                "in_process_seconds": time.perf_counter() - started,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
