"""The closing W&B tables of a run: per-class metrics, the test confusion matrix, sample test
predictions and the final metrics in the run's summary (``logger=wandb``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import WandbLogger

from sftlab.inference.predictor import Predictor, class_probabilities
from sftlab.reporting.report import per_class_table
from sftlab.training.loggers import as_list


def _wandb_logger(logger: Any) -> Any:
    return next((each for each in as_list(logger) if isinstance(each, WandbLogger)), None)


def sample_predictions(
    model, tokenizer, frame, labels: list[str], n: int, max_length: int
) -> list[tuple]:
    """The first ``n`` rows of ``frame`` as ``(text, true label, predicted label, probability)``."""
    if frame is None or not len(frame):
        return []
    rows = frame.head(n)
    texts = rows["text"].astype(str).tolist()
    # The frame's texts are cleaned already: the predictor applies no cleaning of its own.
    predictor = Predictor(model, tokenizer, labels, "classification", "text", max_length)
    was_training = model.training
    model.eval()
    probs = class_probabilities(predictor, texts, batch_size=32)
    model.train(was_training)
    truth = rows["label"].astype(str).tolist()
    return [
        (t, y, labels[int(p.argmax())], float(p.max()))
        for t, y, p in zip(texts, truth, probs, strict=True)
    ]


def finish(
    logger: Any, metrics: dict[str, Any], run_dir: Path, model=None, tokenizer=None, datamodule=None
) -> None:
    """Close the W&B run with its tables and summary (each sweep job is its own, finished run)."""
    wb_logger = _wandb_logger(logger)
    if wb_logger is None:
        return
    import wandb

    labels = datamodule.label_names
    options = getattr(wb_logger, "sftlab_options", {})
    run = wb_logger.experiment
    scalars = {
        k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
    }
    run.summary.update(scalars)
    cm = metrics.get("test/confusion_matrix")
    if cm:
        y_true = [i for i, row in enumerate(cm) for j, n in enumerate(row) for _ in range(int(n))]
        y_pred = [j for i, row in enumerate(cm) for j, n in enumerate(row) for _ in range(int(n))]
        table = wandb.Table(columns=["label", "support", "precision", "recall", "f1"])
        for row in per_class_table(metrics, labels):
            table.add_data(*row.values())
        run.log(
            {
                "test/confusion_matrix": wandb.plot.confusion_matrix(
                    y_true=y_true, preds=y_pred, class_names=labels, title="test confusion matrix"
                ),
                "test/per_class": table,
            }
        )
    n = options.get("predictions") or 0
    if model is not None and tokenizer is not None and n:
        test = datamodule.frames.get("test")
        rows = sample_predictions(
            model, tokenizer, test, labels, int(n), datamodule.config.max_length
        )
        table = wandb.Table(columns=["text", "label", "predicted", "score", "correct"])
        for text, true, pred, score in rows:
            table.add_data(text, true, pred, round(float(score), 4), true == pred)
        run.log({"test/predictions": table})
    model_dir = Path(run_dir) / "model"
    if options.get("model_artifact") and model_dir.is_dir():
        artifact = wandb.Artifact(f"model-{run.id}", type="model", metadata=scalars)
        artifact.add_dir(str(model_dir))
        run.log_artifact(artifact)
    offline = options.get("offline", False)
    run_path = Path(run.dir).parent  # .../wandb/offline-run-<time>-<id>
    run.finish()
    if offline:
        print(f"W&B run saved offline; upload it with: wandb sync {run_path}", flush=True)
