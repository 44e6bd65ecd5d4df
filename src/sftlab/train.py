"""``train(cfg) -> dict[str, float]``: one fine-tuning run, composed from the Hydra config."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as L
from hydra.utils import instantiate
from lightning.pytorch.callbacks import LearningRateMonitor
from omegaconf import DictConfig, OmegaConf, open_dict

from sftlab import strategies, tasks
from sftlab.config.checks import check_config, check_metric
from sftlab.data.datamodule import DataConfig, TextClassificationDataModule
from sftlab.export.hf_folder import export_model, model_extra, write_splits
from sftlab.export.model_card import model_card
from sftlab.models.backbone import load_model, load_tokenizer
from sftlab.models.causal import resolved_model_cfg
from sftlab.models.speed import cuda_graphs, scale, unpad
from sftlab.reporting import wandb_tables
from sftlab.reporting.report import print_metrics, write_report
from sftlab.strategies.optim import optimizer_from_config
from sftlab.training import lifecycle, loggers, resume
from sftlab.training.callbacks import early_stopping
from sftlab.training.checkpoint_io import StreamingCheckpointIO
from sftlab.training.features import cache_features
from sftlab.training.progress import progress
from sftlab.training.throughput import Throughput
from sftlab.utils import hardware
from sftlab.utils.files import write_json
from sftlab.utils.secrets import is_secret

log = logging.getLogger(__name__)


def train(cfg: DictConfig) -> dict[str, float]:
    """Fine-tune, test the best checkpoint, export ``model/``; return the final metrics."""
    check_config(cfg)  # before any data is read or file written
    lifecycle.mask_hydra(cfg)  # Hydra wrote the overrides, secrets included, before this ran
    run = resume.plan(cfg)  # a resumed run continues in its own dir with its own config
    cfg = run.cfg
    if cfg.data.get("task") == "generation":  # a causal LM: its own data, module and export
        from sftlab.recipes.causal_lm import train_generation

        return train_generation(cfg, run)
    started = time.perf_counter()
    hardware.resolve_trainer(cfg)  # trainer.precision: auto -> what this machine runs fast
    out = run.out
    L.seed_everything(cfg.seed, workers=True, verbose=False)

    # Everything that can fail on user input happens before any file is written.
    # A GGUF model (model=smollm2) is converted once into a cached Hugging Face folder.
    model_cfg = resolved_model_cfg(OmegaConf.to_container(cfg.model, resolve=True))
    tokenizer = load_tokenizer(model_cfg)
    data_cfg = DataConfig.from_dict(OmegaConf.to_container(cfg.data, resolve=True))
    datamodule = TextClassificationDataModule(data_cfg, tokenizer, seed=cfg.seed)
    datamodule.setup("fit")
    labels = datamodule.label_names
    for key in ("monitor", "optimized_metric"):  # per-class names, now that the labels are known
        check_metric(key, cfg.get(key), data_cfg.task, labels, final=key == "optimized_metric")
    model = load_model(model_cfg, labels, tokenizer)
    model = scale.gradient_checkpointing(model, model_cfg.get("gradient_checkpointing", False))
    model = instantiate(cfg.strategy.apply)(model)  # a strategy returns the model (LoRA wraps it)
    trainable, total = strategies.count_parameters(model)
    log.info(strategies.describe(model))
    graphed = cuda_graphs.decide(cfg, model)  # model.cuda_graphs=true where it cannot: an error
    out.mkdir(parents=True, exist_ok=True)
    monitor, monitor_mode = tasks.monitor(data_cfg.task, cfg.monitor, cfg.monitor_mode)
    checkpoint, checkpoints = resume.checkpoint_callbacks(
        out, monitor, monitor_mode, cfg.get("checkpoint", {}).get("every_n_steps")
    )
    logger = loggers.make_logger(
        cfg.get("logger"), run_name=_run_name(), group=_sweep_name(), run_id=run.state["wandb_id"]
    )
    bars, bar_args = progress(cfg.trainer.get("enable_progress_bar", True))
    train_lengths = datamodule.datasets["train"].lengths
    throughput = Throughput(sum(train_lengths) / max(1, len(train_lengths)))
    callbacks = [*checkpoints, lifecycle.stop_callback(out), throughput, *bars]
    callbacks += [LearningRateMonitor("step")] if logger else []
    callbacks += early_stopping(cfg, monitor, monitor_mode)
    if cfg.strategy.get("callback"):  # e.g. gradual unfreezing
        callbacks.append(instantiate(cfg.strategy.callback))
    # Made before the features: under DDP it knows this process's rank from the environment.
    trainer: L.Trainer = instantiate(
        cfg.trainer,
        callbacks=callbacks,
        logger=logger,
        plugins=[StreamingCheckpointIO()],
        **bar_args,
    )

    trained = model  # what the Lightning module runs: the model, or its head on cached features
    fit_data = datamodule  # its batches: token ids, or the cached features of the frozen body
    if cfg.strategy.get("cache_features"):
        trained, fit_data = cache_features(
            model,
            datamodule,
            str(cfg.trainer.precision),
            hardware.device_of(cfg.trainer.get("accelerator", "auto")),
            cfg.strategy.get("cache_max_memory_mb", 2048),
            out / "features",
            build=trainer.is_global_zero,  # the other ranks receive rank 0's in fit()
        )
    trained = scale.compiled(trained, model_cfg.get("compile", False))

    optimizer, layer_decay = optimizer_from_config(cfg.optimizer)
    weights = cfg.get("loss", {}).get("class_weights")
    weights = datamodule.class_weights(weights) if data_cfg.is_classification else None
    module = tasks.build_module(
        cfg, data_cfg, trained, labels, optimizer, class_weights=weights, layer_decay=layer_decay
    )
    module.graphed = _training_batches(
        graphed, bool(cfg.strategy.get("cache_features")), data_cfg, model, tokenizer, datamodule
    )
    with open_dict(cfg):  # data.max_length=auto: record the number it resolved to
        cfg.data.max_length = data_cfg.max_length
    run.state["labels"] = labels
    if trainer.is_global_zero:
        lifecycle.write_config(run)
    lifecycle.keep_csv_history(trainer, run)  # before log_config starts the CSV writer
    loggers.log_config(logger, cfg)

    lifecycle.fit(trainer, module, fit_data, run)
    fit_seconds = time.perf_counter() - started
    graphs = module.graphed.facts() if module.graphed else {}
    if module.graphed:
        module.graphed.release()  # evaluation runs eagerly
        module.graphed = None

    metrics: dict[str, Any] = {
        "trainable_params": trainable,
        "total_params": total,
        "epochs": trainer.current_epoch,
        "fit_seconds": round(fit_seconds, 1),
        "train_rows": len(datamodule.frames["train"]),
        **throughput.results(),
        **hardware.run_facts(trainer),
        **graphs,
    }
    best = checkpoint.best_model_score
    if best is not None:
        metrics[f"best_{monitor}"] = float(best)
    ckpt = checkpoint.best_model_path or None
    # The best checkpoint's val/* metrics: predict.py on <run>/data/validation.csv must reproduce them.
    if "validation" in datamodule.datasets:
        (val,) = trainer.validate(
            module, datamodule=fit_data, ckpt_path=ckpt, verbose=False, weights_only=True
        )
        metrics.update({k: float(v) for k, v in val.items()})
    if cfg.get("test", True) and "test" in datamodule.datasets:
        trainer.test(module, datamodule=fit_data, ckpt_path=ckpt, verbose=False, weights_only=True)
        metrics.update(module.test_results)
    elif ckpt:  # export the best weights even when the test split is skipped
        resume.load_weights(module, ckpt)
    metrics["wall_seconds"] = round(time.perf_counter() - started, 1)

    unpad.disable(model)  # the exported model, and W&B's sample predictions, use plain SDPA
    if trainer.is_global_zero:
        write_splits(datamodule.frames, out / "data", data_cfg.text_column, data_cfg.label_column)
        # The metrics first: an export that fails keeps them (and best.ckpt to export again).
        write_json(out / "metrics.json", metrics)
        run.save(status="finished")
        if cfg.get("export", True):
            with lifecycle.export_guard(out):
                export_model(
                    strategies.prepare_for_export(
                        model
                    ),  # LoRA: merged, unless strategy.adapter_only
                    tokenizer,
                    out / "model",
                    extra=model_extra(cfg, data_cfg, module, labels),
                    card=model_card(lifecycle.masked_config(cfg), metrics, labels),
                )
        print_metrics(metrics, labels, title=f"test metrics ({out})")
        write_report(out, metrics, labels, monitor=monitor)
        wandb_tables.finish(logger, metrics, out, model, tokenizer, datamodule)
    return {k: float(v) for k, v in metrics.items() if _is_number(v)}


def _training_batches(graphed: bool, head_only: bool, data_cfg, model, tokenizer, datamodule):
    """How training batches reach the model, logged in one line: CUDA graphs over padded
    batches of a few shapes (model.cuda_graphs, one GPU), else packed (data.unpad), else padded.
    Returns the GraphedTraining the module runs, or None."""
    if graphed:
        multiple = cuda_graphs.bucket(data_cfg.max_length)
        datamodule.train_collate = cuda_graphs.StaticCollator(
            tokenizer, multiple, data_cfg.max_length
        )
        log.info(
            "model.cuda_graphs: training steps replay as CUDA graphs, batches padded to a "
            "multiple of %d tokens (data.unpad does not apply)", multiple,
        )  # fmt: skip
        return cuda_graphs.GraphedTraining(model, data_cfg.batch_size)
    if not data_cfg.unpad or head_only:  # head-only trains on cached features, not batches
        return None
    if unpad.supports(model):
        datamodule.train_collate = unpad.UnpaddedCollator(unpad.enable(model))
        log.info("data.unpad: training batches are packed, pad tokens skip the dense layers")
    else:
        log.info(
            "data.unpad: %s trains on padded batches (unpadding covers BERT, RoBERTa and "
            "XLM-R bodies)", type(model).__name__,
        )  # fmt: skip
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _run_name() -> str | None:
    """The run's overrides (``strategy=head_only,seed=2``), for loggers that show a name."""
    try:
        from hydra.core.hydra_config import HydraConfig

        task = HydraConfig.get().overrides.task
        return ",".join(o for o in task if not is_secret(o.split("=", 1)[0])) or "defaults"
    except (ValueError, ImportError):
        return None


def _sweep_name() -> str | None:
    """The multirun dir (``2026-11-30_04-16-37``): W&B groups the jobs of one sweep by it."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hydra_cfg = HydraConfig.get()
        if hydra_cfg.mode != RunMode.MULTIRUN:
            return None
        return "_".join(Path(hydra_cfg.sweep.dir).parts[-2:])
    except (ValueError, ImportError):
        return None
