"""Experiment loggers from the ``logger`` config group; W&B never prompts for a login.

With ``logger=wandb`` the CSV logger runs alongside (the run report reads csv/metrics.csv), and
the W&B run gets the config without secrets, every ``stage/metric``, per-class tables, the test
confusion matrix, sample test predictions and the final metrics in its summary.
"""

from __future__ import annotations

import logging
import netrc
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from sftlab.secrets import masked

log = logging.getLogger(__name__)

WANDB_TARGET = "lightning.pytorch.loggers.WandbLogger"
# Our keys in conf/logger/wandb.yaml that WandbLogger does not take.
SFTLAB_KEYS = ("offline", "predictions", "model_artifact")


def wandb_logged_in() -> bool:
    """True when W&B has credentials (WANDB_API_KEY, or a netrc entry for its host)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        hosts = netrc.netrc().hosts
    except (OSError, netrc.NetrcParseError):
        return False
    own = urlparse(os.environ.get("WANDB_BASE_URL", "")).hostname  # a self-hosted server
    return any("wandb" in host or host == own for host in hosts)


def make_logger(
    cfg: DictConfig | None,
    run_name: str | None = None,
    group: str | None = None,
    run_id: str | None = None,
) -> Any:
    """Instantiate the configured logger; decide W&B's online/offline mode without prompting.

    For W&B, returns ``[CSVLogger, WandbLogger]`` so that csv/metrics.csv always exists.
    ``run_id`` (kept in the run dir's run.json) makes a resumed run continue the same W&B run.
    """
    if cfg is None or cfg.get("_target_") is None:
        return False
    if cfg["_target_"] != WANDB_TARGET:
        return instantiate(cfg)
    from lightning.pytorch.loggers import CSVLogger

    values = OmegaConf.to_container(cfg, resolve=True)
    extras = {k: values.pop(k, None) for k in SFTLAB_KEYS}
    offline = extras["offline"]
    if offline is None:
        offline = (
            os.environ.get("WANDB_MODE") in ("offline", "dryrun", "disabled")
            or not wandb_logged_in()
        )
    if offline:
        values["log_model"] = False  # checkpoints are large; upload them from an online run
    values["name"] = values.get("name") or run_name
    values["group"] = values.get("group") or group
    if run_id and not values.get("id"):
        values["id"], values["resume"] = run_id, "allow"
    os.environ.setdefault("WANDB_SILENT", "true")
    Path(values["save_dir"]).mkdir(parents=True, exist_ok=True)
    wandb_logger = instantiate(values, offline=offline)
    wandb_logger.sftlab_options = {**extras, "offline": offline}
    return [CSVLogger(values["save_dir"], name="csv", version=""), wandb_logger]


def as_list(logger: Any) -> list[Any]:
    if not logger:
        return []
    return list(logger) if isinstance(logger, (list, tuple)) else [logger]


def log_config(logger: Any, cfg: DictConfig) -> None:
    """Every logger gets the resolved config, secrets masked (``sftlab.secrets``)."""
    config = masked(OmegaConf.to_container(cfg, resolve=True))
    for each in as_list(logger):
        each.log_hyperparams(config)


def _wandb_logger(logger: Any) -> Any:
    from lightning.pytorch.loggers import WandbLogger

    return next((each for each in as_list(logger) if isinstance(each, WandbLogger)), None)


def sample_predictions(
    model, tokenizer, frame, labels: list[str], n: int, max_length: int
) -> list[tuple]:
    """The first ``n`` rows of ``frame`` as ``(text, true label, predicted label, probability)``."""
    import torch

    if frame is None or not len(frame):
        return []
    rows = frame.head(n)
    texts = rows["text"].astype(str).tolist()
    was_training = model.training
    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(texts), 32):
            chunk = texts[start : start + 32]
            enc = tokenizer(
                chunk, truncation=True, max_length=max_length, padding=True, return_tensors="pt"
            )
            enc = {k: v.to(model.device) for k, v in enc.items()}
            probs = torch.softmax(model(**enc).logits.float(), dim=-1)
            score, pred = probs.max(dim=-1)
            out += [
                (t, "", labels[int(p)], float(s))
                for t, p, s in zip(chunk, pred, score, strict=True)
            ]
    model.train(was_training)
    truth = rows["label"].astype(str).tolist()
    return [(t, y, p, s) for (t, _, p, s), y in zip(out, truth, strict=True)]


def finish(
    logger: Any, metrics: dict[str, Any], run_dir: Path, model=None, tokenizer=None, datamodule=None
) -> None:
    """Close the W&B run with its tables and summary (each sweep job is its own, finished run)."""
    wb_logger = _wandb_logger(logger)
    if wb_logger is None:
        return
    import wandb

    from sftlab.report import per_class_table

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
