"""Which learning rate suits a head trained on frozen MiniLM features? One feature extraction,
then the head trained through sftlab's LightningModule for each lr (3 epochs, the default
schedule). Writes bench/results/head_only_lr.json.

    python bench/head_only_lr.py --pooling mean --lrs 1e-3 3e-3 1e-2 3e-2
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import lightning.pytorch as L  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402
from hydra.utils import instantiate  # noqa: E402

from sftlab.data.datamodule import DataConfig, TextDataModule  # noqa: E402
from sftlab.models.backbone import load_model, load_tokenizer  # noqa: E402
from sftlab.strategies import head_only  # noqa: E402
from sftlab.strategies.optim import optimizer_from_config  # noqa: E402
from sftlab.tasks.classification import SequenceClassifier  # noqa: E402
from sftlab.training.features import cache_features  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pooling", default="mean")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lrs", type=float, nargs="+", default=[1e-3, 3e-3, 1e-2, 3e-2])
    parser.add_argument(
        "--dropouts",
        type=float,
        nargs="+",
        default=[None],
        help="head dropout (default: the model's)",
    )
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=[42],
        help="seeds of the head's shuffling and dropout",
    )
    parser.add_argument("--name", default=None, help="results file stem")
    args = parser.parse_args()
    overrides = (
        ["strategy=head_only", f"model.pooling={args.pooling}"]
        if args.pooling != "null"
        else ["strategy=head_only"]
    )
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    L.seed_everything(cfg.seed, verbose=False)
    tokenizer = load_tokenizer(cfg.model)
    dm = TextDataModule(DataConfig.from_dict(dict(cfg.data)), tokenizer, seed=cfg.seed)
    dm.setup("fit")
    model = head_only(load_model(cfg.model, dm.label_names, tokenizer))
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    head, features = cache_features(model, dm, str(cfg.trainer.precision))
    results = []
    runs = [(lr, d, seed) for lr in args.lrs for d in args.dropouts for seed in args.seeds]
    for lr, dropout, seed in runs:
        model.load_state_dict(initial)  # the same initial head for every run
        if dropout is not None:
            head.parts["dropout"].p = dropout
        L.seed_everything(seed, verbose=False)
        optimizer, _ = optimizer_from_config({**dict(cfg.optimizer), "lr": lr})
        module = SequenceClassifier(head, dm.label_names, optimizer, instantiate(cfg.scheduler))
        trainer = L.Trainer(
            max_epochs=args.epochs,
            accelerator="cpu",
            precision=cfg.trainer.precision,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            gradient_clip_val=1.0,
            num_sanity_val_steps=0,
        )
        trainer.fit(module, datamodule=features)
        val = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
        trainer.test(module, datamodule=features, verbose=False)
        results.append(
            {
                "lr": lr,
                "head_dropout": head.parts["dropout"].p,
                "seed": seed,
                "val/f1_macro": round(val["val/f1_macro"], 4),
                "val/acc": round(val["val/acc"], 4),
                "test/acc": round(module.test_results["test/acc"], 4),
                "test/f1_macro": round(module.test_results["test/f1_macro"], 4),
            }
        )
        print(results[-1], flush=True)
    out = ROOT / "bench" / "results" / f"{args.name or 'head_only_lr_' + args.pooling}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {"pooling": args.pooling, "epochs": args.epochs, "last_epoch_metrics": results},
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
