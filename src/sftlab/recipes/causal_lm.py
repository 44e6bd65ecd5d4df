"""``train_generation(cfg)``: generative SFT of a causal LM (``data.task=generation``)."""

from __future__ import annotations

import logging
import time
from typing import Any

import lightning.pytorch as L
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from sftlab import strategies
from sftlab.config.checks import check_distributed_strategy, check_generation_strategy
from sftlab.config.data import DataConfig
from sftlab.data.generation import GenerationDataModule, prompt_budget
from sftlab.data.packing import check_packing
from sftlab.export.hf_folder import export_model
from sftlab.models.backbone import load_tokenizer
from sftlab.models.causal import check_decoder, load_causal_lm, resolved_model_cfg
from sftlab.models.speed import scale
from sftlab.strategies.optim import optimizer_from_config
from sftlab.tasks.generation import CausalLMModule, score_generations
from sftlab.training import lifecycle, resume
from sftlab.training.callbacks import early_stopping
from sftlab.training.checkpoint_io import StreamingCheckpointIO
from sftlab.training.loggers import make_logger
from sftlab.utils import hardware
from sftlab.utils.files import write_json

log = logging.getLogger(__name__)


def train_generation(cfg: DictConfig, run: resume.RunPlan | None = None) -> dict[str, float]:
    """Fine-tune on prompt -> response pairs, report val/test loss and perplexity, generate
    for held-out prompts (chrF, BLEU; ``generations.jsonl``), export ``model/``."""
    started = time.perf_counter()
    data_cfg = DataConfig.from_dict(OmegaConf.to_container(cfg.data, resolve=True))
    model_cfg = OmegaConf.to_container(cfg.model, resolve=True)
    check_decoder(model_cfg, data_cfg.task)  # before any download, conversion or tokenizing
    check_generation_strategy(str(cfg.strategy.apply._target_).rsplit(".", 1)[-1])
    run = run or resume.plan(cfg)
    out = run.out
    check_distributed_strategy(cfg.trainer)
    hardware.resolve_trainer(cfg)
    L.seed_everything(cfg.seed, workers=True, verbose=False)

    model_cfg = resolved_model_cfg(model_cfg)
    tokenizer = load_tokenizer(model_cfg)
    datamodule = GenerationDataModule(data_cfg, tokenizer, seed=cfg.seed)
    datamodule.setup("fit")
    model = load_causal_lm(model_cfg, tokenizer)
    model = scale.gradient_checkpointing(model, model_cfg.get("gradient_checkpointing", False))
    model = instantiate(cfg.strategy.apply)(model)  # a strategy returns the model (LoRA wraps it)
    if data_cfg.packing:  # before any training: the model must keep packed examples apart
        check_packing(model, datamodule.datasets["train"].rows)
    trainable, total = strategies.count_parameters(model)
    optimizer, layer_decay = optimizer_from_config(cfg.optimizer)
    module = CausalLMModule(
        scale.compiled(model, model_cfg.get("compile", False)),
        optimizer,
        instantiate(cfg.scheduler) if cfg.get("scheduler") else None,
        layer_decay=layer_decay,
    )
    has_val = "validation" in datamodule.datasets
    checkpoint, checkpoints = resume.checkpoint_callbacks(
        out, "val/loss" if has_val else None, "min", cfg.get("checkpoint", {}).get("every_n_steps")
    )
    logger = make_logger(cfg.get("logger"), run_name=None, run_id=run.state["wandb_id"])
    # no_grad, not inference mode, for evaluation: the perplexity states that validate() before
    # fit() leaves behind must stay updatable inside fit's validation loop.
    trainer: L.Trainer = instantiate(
        cfg.trainer,
        callbacks=[
            *checkpoints,
            lifecycle.stop_callback(out),
            *early_stopping(cfg, "val/loss", "min"),
        ],
        logger=logger,
        inference_mode=False,
        plugins=[StreamingCheckpointIO()],
    )
    if trainer.is_global_zero:
        out.mkdir(parents=True, exist_ok=True)
        lifecycle.write_config(run)
    lifecycle.keep_csv_history(trainer, run)  # before validate() starts the CSV writer

    metrics: dict[str, Any] = {"trainable_params": trainable, "total_params": total}
    if has_val:  # the starting point: what fine-tuning is measured against
        (before,) = trainer.validate(module, datamodule=datamodule, verbose=False)
        metrics.update({f"before/{k}": float(v) for k, v in before.items()})
    lifecycle.fit(trainer, module, datamodule, run)
    metrics.update(
        epochs=trainer.current_epoch,
        fit_seconds=round(time.perf_counter() - started, 1),
        **hardware.run_facts(trainer),
    )
    ckpt = checkpoint.best_model_path or None
    if has_val:
        (val,) = trainer.validate(
            module, datamodule=datamodule, ckpt_path=ckpt, verbose=False, weights_only=True
        )
        metrics.update({k: float(v) for k, v in val.items()})
    elif ckpt:
        resume.load_weights(module, ckpt)
    if cfg.get("test", True) and "test" in datamodule.datasets:
        trainer.test(
            module, datamodule=datamodule, ckpt_path=ckpt, verbose=False, weights_only=True
        )
        metrics.update(module.test_results)
        sample = datamodule.frames["test"].head(data_cfg.generate_samples)
        if trainer.is_global_zero and len(sample):
            metrics.update(
                score_generations(
                    module.model,
                    tokenizer,
                    sample,
                    data_cfg.max_new_tokens,
                    out / "generations.jsonl",
                    prompt_budget(data_cfg.max_length, data_cfg.max_new_tokens),
                )
            )
    metrics["wall_seconds"] = round(time.perf_counter() - started, 1)
    if trainer.is_global_zero:
        write_json(out / "metrics.json", metrics)  # first: a failed export keeps the metrics
        run.save(status="finished")
        if cfg.get("export", True):
            with lifecycle.export_guard(out):
                export_model(
                    strategies.prepare_for_export(module.model), tokenizer, out / "model",
                    extra={"task": "generation", "prompt_template": data_cfg.prompt_template,
                           "prompt_column": data_cfg.prompt_column,
                           "messages_column": data_cfg.messages_column,
                           "cleaning": data_cfg.cleaning,
                           "max_length": data_cfg.max_length, "max_new_tokens": data_cfg.max_new_tokens},
                )  # fmt: skip
        for key in sorted(metrics):
            log.info("%s = %s", key, metrics[key])
    return {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))}
