"""The steps both recipes take, each a function that returns what it makes: start the run,
apply the fine-tuning strategy, build the trainer, write the run's config, evaluate the best
checkpoint, and save the run's results."""

from __future__ import annotations

import logging
from typing import Any

import lightning.pytorch as L
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import DictConfig
from torch import nn

from sftlab import strategies
from sftlab.export import hub
from sftlab.export.hf_folder import export_model
from sftlab.models.speed import scale
from sftlab.training import lifecycle, loggers
from sftlab.training.checkpoint_io import StreamingCheckpointIO
from sftlab.training.resume import RunPlan, load_weights
from sftlab.utils import hardware
from sftlab.utils.files import write_json

log = logging.getLogger(__name__)


def start(cfg: DictConfig) -> None:
    """Resolve ``trainer.precision: auto`` for this machine and seed everything."""
    hardware.resolve_trainer(cfg)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    if cfg.get("push_to_hub") and (problem := hub.push_problem()):
        log.warning("push_to_hub=%s will fail at the end of the run: %s", cfg.push_to_hub, problem)


def apply_strategy(cfg: DictConfig, model: nn.Module, model_cfg: dict[str, Any]) -> nn.Module:
    """Gradient checkpointing if asked, then the fine-tuning strategy (``strategy.apply``):
    it returns the model with the right parameters trainable (LoRA wraps it)."""
    model = scale.gradient_checkpointing(model, model_cfg.get("gradient_checkpointing", False))
    return instantiate(cfg.strategy.apply)(model)


def make_trainer(cfg: DictConfig, callbacks: list[Any], logger: Any, **options: Any) -> L.Trainer:
    """The Lightning trainer from ``cfg.trainer`` (checkpoints written as a stream)."""
    return instantiate(
        cfg.trainer,
        callbacks=callbacks,
        logger=logger,
        plugins=[StreamingCheckpointIO()],
        **options,
    )


def write_run_config(trainer: L.Trainer, run: RunPlan) -> None:
    """config.yaml and run.json (rank 0), and a resumed run's CSV rows set aside before any
    logger writes."""
    if trainer.is_global_zero:
        run.out.mkdir(parents=True, exist_ok=True)
        lifecycle.write_config(run)
    lifecycle.keep_csv_history(trainer, run)


def evaluate_best(
    trainer: L.Trainer,
    module: L.LightningModule,
    data: L.LightningDataModule,
    checkpoint: ModelCheckpoint,
    validate: bool,
    test: bool,
) -> dict[str, Any]:
    """The best checkpoint's ``val/*`` (and ``test/*``) metrics; with neither, its weights are
    loaded so that the export holds them. The loggers get them once, at the last step and with
    no epoch, the validation as ``best/val/*``: the history of ``val/*`` per epoch holds only
    the epochs trained."""
    val: dict[str, float] = {}
    tested: dict[str, Any] = {}
    ckpt = checkpoint.best_model_path or None
    with loggers.held_back(trainer) as held:
        if validate:
            (logged,) = trainer.validate(
                module, datamodule=data, ckpt_path=ckpt, verbose=False, weights_only=True
            )
            val = {k: float(v) for k, v in logged.items()}
        if test:
            trainer.test(module, datamodule=data, ckpt_path=ckpt, verbose=False, weights_only=True)
            tested = module.test_results
        elif ckpt and not validate:
            load_weights(module, ckpt)
    best = {f"best/{k}": v for k, v in val.items()}
    loggers.log_outside_fit(held, {**best, **tested}, step=trainer.global_step)
    return {**val, **tested}


def save_results(
    cfg: DictConfig,
    run: RunPlan,
    metrics: dict[str, Any],
    model: nn.Module,
    tokenizer: Any,
    extra: dict[str, Any],
    card: str | None = None,
) -> None:
    """metrics.json first (a failed export keeps it, and best.ckpt to export again), then
    ``model/``: a Hugging Face folder (LoRA merged unless ``strategy.adapter_only``), then the
    run marked finished: a run stopped before that resumes without training, to the same
    metrics and model."""
    write_json(run.out / "metrics.json", metrics)
    if cfg.get("export", True):
        with lifecycle.export_guard(run.out):
            export_model(
                strategies.prepare_for_export(model),
                tokenizer,
                run.out / "model",
                extra=extra,
                card=card,
            )
    run.save(status="finished")


def push(cfg: DictConfig, run: RunPlan) -> str | None:
    """Upload ``model/`` to ``push_to_hub`` (if set), the run's last step: everything local is
    written first, and a push that fails says how to push later with ``python -m sftlab.export``."""
    if not cfg.get("push_to_hub"):
        return None
    url = hub.push_model(run.out, cfg.push_to_hub)
    log.info("pushed %s to %s", run.out / "model", url)
    return url


def numbers(metrics: dict[str, Any]) -> dict[str, float]:
    """What ``train(cfg)`` returns: the numeric metrics, as floats."""
    return {
        k: float(v)
        for k, v in metrics.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }


def logger_for(cfg: DictConfig, run: RunPlan, run_name: str | None, group: str | None) -> Any:
    """The configured experiment loggers, CSV among them; a resumed run continues its W&B run."""
    return loggers.make_logger(
        cfg.get("logger"), run.out, run_name=run_name, group=group, run_id=run.state["wandb_id"]
    )
