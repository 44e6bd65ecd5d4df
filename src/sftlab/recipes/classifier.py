"""The encoder recipe: fine-tune a pretrained encoder with a head for ``data.task``
(classification, multi-label, regression), test its best checkpoint, export ``model/``.

``run(cfg, plan)`` reads top-down as the run's steps; each step is a function below that
takes what it needs and returns what it makes.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as L
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from omegaconf import DictConfig, OmegaConf, open_dict
from torch import nn

from sftlab import strategies
from sftlab.config.checks import check_metric
from sftlab.config.data import DataConfig
from sftlab.config.metric_names import monitor as task_monitor
from sftlab.data import imbalance
from sftlab.data.datamodule import TextDataModule
from sftlab.export.hf_folder import model_extra, write_splits
from sftlab.export.model_card import model_card
from sftlab.models.backbone import load_model, load_tokenizer
from sftlab.models.causal import resolved_model_cfg
from sftlab.models.speed import cuda_graphs, scale, unpad
from sftlab.recipes import steps
from sftlab.reporting import baseline, logged, wandb_tables
from sftlab.reporting.report import print_metrics, write_report
from sftlab.strategies.optim import optimizer_from_config
from sftlab.tasks.base import EncoderTask
from sftlab.tasks.build import build_module
from sftlab.training import budget, lifecycle, loggers
from sftlab.training.callbacks import early_stopping
from sftlab.training.features import cache_features
from sftlab.training.memory import ReleaseFreedMemory, release_freed_memory
from sftlab.training.progress import progress
from sftlab.training.resume import RunPlan, checkpoint_callbacks
from sftlab.training.throughput import Throughput
from sftlab.utils import hardware
from sftlab.utils.secrets import is_secret

log = logging.getLogger(__name__)


def run(cfg: DictConfig, plan: RunPlan) -> dict[str, float]:
    """Fine-tune, test the best checkpoint, export ``model/``; return the final metrics."""
    started = time.perf_counter()
    steps.start(cfg)
    # Everything that can fail on user input happens before any file is written.
    model_cfg, tokenizer = load_model_settings(cfg)
    data, data_cfg = load_data(cfg, tokenizer)
    floor = linear_floor(cfg, data, data_cfg)
    model = build_model(cfg, model_cfg, tokenizer, data.label_names)
    sizes = strategies.count_parameters(model)  # before fit: gradual unfreezing changes it
    graphed = choose_training_batches(cfg, model, tokenizer, data, data_cfg)
    plan.out.mkdir(parents=True, exist_ok=True)
    monitor, mode = task_monitor(data_cfg.task, cfg.monitor, cfg.monitor_mode)
    trainer, checkpoint, throughput, logger = build_trainer(cfg, plan, data, monitor, mode)
    trained, fit_data = model_inputs(cfg, model, data, trainer, model_cfg, plan.out)
    module = build_task_module(cfg, data, data_cfg, trained, graphed)
    record_config(cfg, plan, trainer, logger, data_cfg, data.label_names)

    lifecycle.fit(trainer, module, fit_data, plan)
    metrics = run_facts(sizes, trainer, module, data, throughput, started)
    metrics.update(evaluate(cfg, trainer, module, data, fit_data, checkpoint, monitor))
    metrics.update(floor)
    metrics["wall_seconds"] = round(time.perf_counter() - started, 1)
    if trainer.is_global_zero:
        save_outputs(cfg, plan, metrics, model, tokenizer, data, data_cfg, module, monitor, logger)
    return steps.numbers(metrics)


def load_model_settings(cfg: DictConfig) -> tuple[dict[str, Any], Any]:
    """The resolved model config and its tokenizer; a GGUF model (``model=smollm2``) is
    converted once into a cached Hugging Face folder."""
    model_cfg = resolved_model_cfg(OmegaConf.to_container(cfg.model, resolve=True))
    return model_cfg, load_tokenizer(model_cfg)


def load_data(cfg: DictConfig, tokenizer: Any) -> tuple[TextDataModule, DataConfig]:
    """Read, clean, split and tokenize the data; check the metric names against its labels."""
    data_cfg = DataConfig.from_dict(OmegaConf.to_container(cfg.data, resolve=True))
    data = TextDataModule(data_cfg, tokenizer, seed=cfg.seed)
    data.setup("fit")
    for key in ("monitor", "optimized_metric"):  # per-class names, now that labels are known
        check_metric(
            key, cfg.get(key), data_cfg.task, data.label_names, final=key == "optimized_metric"
        )
    return data, data_cfg


def linear_floor(cfg: DictConfig, data: TextDataModule, data_cfg: DataConfig) -> dict[str, float]:
    """TF-IDF + LinearSVC on the same train and test split (single-label classification,
    ``baseline: true``): the floor the fine-tuned model is shown against."""
    if not cfg.get("baseline", True) or data_cfg.task != "classification":
        return {}
    floor = baseline.linear_baseline(data.frames, len(data.label_names))
    release_freed_memory()  # the TF-IDF matrices' pages
    if floor:
        log.info(baseline.describe(floor))
    return floor


def build_model(
    cfg: DictConfig, model_cfg: dict[str, Any], tokenizer, labels: list[str]
) -> nn.Module:
    """The pretrained body with a new head for ``labels``, made trainable as the strategy says."""
    model = load_model(model_cfg, labels, tokenizer)
    model = steps.apply_strategy(cfg, model, model_cfg)
    log.info(strategies.describe(model))
    return model


def choose_training_batches(
    cfg: DictConfig, model: nn.Module, tokenizer, data: TextDataModule, data_cfg: DataConfig
) -> cuda_graphs.GraphedTraining | None:
    """How training batches reach the model, in one log line: CUDA graphs over padded batches
    of a few shapes (``model.cuda_graphs``, one GPU), else packed (``data.unpad``), else padded.
    Returns the graphed training step the module runs, or None."""
    if cuda_graphs.decide(cfg, model):  # model.cuda_graphs=true where it cannot run: an error
        multiple = cuda_graphs.bucket(data_cfg.max_length)
        data.use_train_collate(cuda_graphs.StaticCollator(tokenizer, multiple, data_cfg.max_length))
        log.info(
            "model.cuda_graphs: training steps replay as CUDA graphs, batches padded to a "
            "multiple of %d tokens (data.unpad does not apply)",
            multiple,
        )
        return cuda_graphs.GraphedTraining(model, data_cfg.batch_size)
    if not data_cfg.unpad or cfg.strategy.get("cache_features"):  # head-only: cached features
        return None
    if unpad.supports(model):
        data.use_train_collate(unpad.UnpaddedCollator(unpad.enable(model)))
        log.info("data.unpad: training batches are packed, pad tokens skip the dense layers")
    else:
        log.info(
            "data.unpad: %s trains on padded batches (unpadding covers BERT, RoBERTa and "
            "XLM-R bodies)",
            type(model).__name__,
        )
    return None


def build_trainer(
    cfg: DictConfig, plan: RunPlan, data: TextDataModule, monitor: str, mode: str
) -> tuple[L.Trainer, ModelCheckpoint, Throughput, Any]:
    """The trainer with its callbacks (checkpoints, stop on signal, throughput, progress,
    early stopping, the strategy's own) and logger. Made before the features: under DDP it
    knows this process's rank from the environment."""
    checkpoint, checkpoints = checkpoint_callbacks(
        plan.out, monitor, mode, cfg.get("checkpoint", {}).get("every_n_steps")
    )
    logger = steps.logger_for(cfg, plan, run_name=_run_name(), group=_sweep_name())
    bars, bar_args = progress(cfg.trainer.get("enable_progress_bar", True))
    lengths = data.datasets["train"].lengths
    throughput = Throughput(sum(lengths) / max(1, len(lengths)))
    callbacks = [*checkpoints, lifecycle.stop_callback(plan.out), throughput, *bars]
    callbacks += [ReleaseFreedMemory()]
    callbacks += [LearningRateMonitor("step")] if logger else []
    callbacks += early_stopping(cfg, monitor, mode)
    if cfg.strategy.get("callback"):  # e.g. gradual unfreezing
        callbacks.append(instantiate(cfg.strategy.callback))
    trainer = steps.make_trainer(
        cfg, callbacks, logger, **bar_args, **budget.trainer_overrides(cfg)
    )
    budget.apply(trainer, cfg, len(data.frames["train"]), data.config.batch_size)
    return trainer, checkpoint, throughput, logger


def model_inputs(
    cfg: DictConfig,
    model: nn.Module,
    data: TextDataModule,
    trainer: L.Trainer,
    model_cfg: dict[str, Any],
    out: Path,
) -> tuple[nn.Module, L.LightningDataModule]:
    """What the task module trains and on which batches: the model on token ids, or
    (``strategy.cache_features``) its head on the cached features of the frozen body."""
    trained, fit_data = model, data
    if cfg.strategy.get("cache_features"):
        trained, fit_data = cache_features(
            model,
            data,
            str(cfg.trainer.precision),
            hardware.device_of(cfg.trainer.get("accelerator", "auto")),
            cfg.strategy.get("cache_max_memory_mb", 2048),
            out / "features",
            build=trainer.is_global_zero,  # the other ranks receive rank 0's in fit()
            progress=bool(cfg.trainer.get("enable_progress_bar", True)),
        )
    return scale.compiled(trained, model_cfg.get("compile", False)), fit_data


def build_task_module(
    cfg: DictConfig,
    data: TextDataModule,
    data_cfg: DataConfig,
    trained: nn.Module,
    graphed: cuda_graphs.GraphedTraining | None,
) -> EncoderTask:
    """The LightningModule of ``data.task`` with its loss, metrics and optimizer."""
    optimizer, layer_decay, head_lr_scale = optimizer_from_config(cfg.optimizer)
    spec = cfg.get("loss", {}).get("class_weights")
    weights = data.class_weights(spec) if data_cfg.task == "classification" else None
    if data_cfg.task == "classification":
        log.info(imbalance.describe_weights(spec, weights, data.label_names))
    return build_module(
        cfg,
        data_cfg,
        trained,
        data.label_names,
        optimizer,
        class_weights=weights,
        layer_decay=layer_decay,
        graphed=graphed,
        head_lr_scale=head_lr_scale,
    )


def record_config(
    cfg: DictConfig,
    plan: RunPlan,
    trainer: L.Trainer,
    logger: Any,
    data_cfg: DataConfig,
    labels: list[str],
) -> None:
    """config.yaml (with ``data.max_length=auto`` resolved) and run.json, then every logger
    gets the config, secrets masked."""
    with open_dict(cfg):
        cfg.data.max_length = data_cfg.max_length
    plan.state["labels"] = labels
    steps.write_run_config(trainer, plan)  # before log_config starts the CSV writer
    loggers.log_config(logger, cfg)


def run_facts(
    sizes: tuple[int, int],
    trainer: L.Trainer,
    module: EncoderTask,
    data: TextDataModule,
    throughput: Throughput,
    started: float,
) -> dict[str, Any]:
    """Size, time, speed and hardware of the fit; CUDA graphs are released (evaluation runs
    eagerly)."""
    facts: dict[str, Any] = {
        "trainable_params": sizes[0],
        "total_params": sizes[1],
        "epochs": trainer.current_epoch,
        "fit_seconds": round(time.perf_counter() - started, 1),
        "train_rows": len(data.frames["train"]),
        **throughput.results(),
        **hardware.run_facts(trainer),
        **module.release_graphs(),
    }
    return facts


def evaluate(
    cfg: DictConfig,
    trainer: L.Trainer,
    module: EncoderTask,
    data: TextDataModule,
    fit_data: L.LightningDataModule,
    checkpoint: ModelCheckpoint,
    monitor: str,
) -> dict[str, Any]:
    """The best checkpoint's score, its val/* metrics (predict.py on
    <run>/data/validation.csv reproduces them) and its test/* metrics."""
    metrics: dict[str, Any] = {}
    if checkpoint.best_model_score is not None:
        metrics[f"best_{monitor}"] = float(checkpoint.best_model_score)
    metrics.update(
        steps.evaluate_best(
            trainer,
            module,
            fit_data,
            checkpoint,
            validate="validation" in data.datasets,
            test=cfg.get("test", True) and "test" in data.datasets,
        )
    )
    return metrics


def save_outputs(
    cfg: DictConfig,
    plan: RunPlan,
    metrics: dict[str, Any],
    model: nn.Module,
    tokenizer: Any,
    data: TextDataModule,
    data_cfg: DataConfig,
    module: EncoderTask,
    monitor: str,
    logger: Any,
) -> None:
    """The splits, metrics.json, ``model/`` with its card, the console table, report.md, its
    figures in TensorBoard and MLflow, the W&B tables, then the push to the Hub if
    ``push_to_hub`` is set (rank 0)."""
    labels = data.label_names
    unpad.disable(model)  # the exported model, and W&B's sample predictions, use plain SDPA
    write_splits(data.frames, plan.out / "data", data_cfg.text_column, data_cfg.label_column)
    steps.save_results(
        cfg,
        plan,
        metrics,
        model,
        tokenizer,
        extra=model_extra(cfg, data_cfg, module, labels),
        card=model_card(lifecycle.masked_config(cfg), metrics, labels),
    )
    print_metrics(metrics, labels, title=f"test metrics ({plan.out})")
    if warning := baseline.shortfall(metrics):
        log.warning(warning)
    write_report(plan.out, metrics, labels, monitor=monitor)
    logged.finish(logger, plan.out)
    wandb_tables.finish(logger, metrics, plan.out, model, tokenizer, data)
    steps.push(cfg, plan)


def _run_name() -> str | None:
    """The run's overrides (``strategy=head_only,seed=2``), for loggers that show a name."""
    try:
        task = HydraConfig.get().overrides.task
    except ValueError:  # not under @hydra.main (a test, a notebook)
        return None
    return ",".join(o for o in task if not is_secret(o.split("=", 1)[0])) or "defaults"


def _sweep_name() -> str | None:
    """The multirun dir (``2026-11-30_04-16-37``): W&B groups the jobs of one sweep by it."""
    try:
        hydra_cfg = HydraConfig.get()
    except ValueError:
        return None
    if hydra_cfg.mode != RunMode.MULTIRUN:
        return None
    return "_".join(Path(hydra_cfg.sweep.dir).parts[-2:])
