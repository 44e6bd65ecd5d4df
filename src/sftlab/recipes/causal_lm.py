"""The causal-LM recipe (``data.task=generation``): fine-tune a decoder on prompt -> response
pairs (loss on the response tokens only), report val/test loss and perplexity, generate for
held-out prompts (chrF, BLEU; ``generations.jsonl``), export ``model/`` with its card, write
``report.md``.

``run(cfg, plan)`` reads top-down as the run's steps; the shared ones are in ``steps``.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import lightning.pytorch as L
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from sftlab import strategies
from sftlab.config.data import DataConfig
from sftlab.data.generation import GenerationDataModule, prompt_budget
from sftlab.data.packing import check_packing
from sftlab.export.model_card import generation_card
from sftlab.models.backbone import load_tokenizer
from sftlab.models.causal import check_decoder, load_causal_lm, resolved_model_cfg
from sftlab.models.speed import scale
from sftlab.recipes import steps
from sftlab.reporting import logged
from sftlab.reporting.report import write_generation_report
from sftlab.strategies.optim import optimizer_from_config
from sftlab.tasks.generation import CausalLMModule, read_generations, score_generations
from sftlab.training import budget, lifecycle, loggers
from sftlab.training.callbacks import early_stopping
from sftlab.training.memory import ReleaseFreedMemory
from sftlab.training.resume import RunPlan, checkpoint_callbacks
from sftlab.utils import hardware

log = logging.getLogger(__name__)

SAMPLES_SHOWN = (
    5  # generated replies shown in report.md and the model card (all: generations.jsonl)
)


def run(cfg: DictConfig, plan: RunPlan) -> dict[str, float]:
    """Fine-tune, measure, generate, export; return the final metrics."""
    started = time.perf_counter()
    data_cfg = DataConfig.from_dict(OmegaConf.to_container(cfg.data, resolve=True))
    model_cfg = OmegaConf.to_container(cfg.model, resolve=True)
    check_decoder(model_cfg, data_cfg.task)  # before any download, conversion or tokenizing
    steps.start(cfg)
    model_cfg = resolved_model_cfg(model_cfg)  # a GGUF file: converted once, cached
    tokenizer = load_tokenizer(model_cfg)
    data = load_data(cfg, data_cfg, tokenizer)
    model = build_model(cfg, model_cfg, tokenizer, data, data_cfg)
    sizes = strategies.count_parameters(model)
    module = build_task_module(cfg, model, model_cfg)
    has_val = "validation" in data.datasets
    trainer, checkpoint = build_trainer(cfg, plan, has_val)
    budget.apply(trainer, cfg, len(data.datasets["train"]), data_cfg.batch_size)
    steps.write_run_config(trainer, plan)  # before validate() starts the CSV writer
    loggers.log_config(trainer.loggers, cfg)

    metrics: dict[str, Any] = {"trainable_params": sizes[0], "total_params": sizes[1]}
    if has_val:
        metrics.update(score_before(trainer, module, data))
    lifecycle.fit(trainer, module, data, plan)
    metrics.update(
        epochs=trainer.current_epoch,
        fit_seconds=round(time.perf_counter() - started, 1),
        **hardware.run_facts(trainer),
    )
    test = cfg.get("test", True) and "test" in data.datasets
    metrics.update(steps.evaluate_best(trainer, module, data, checkpoint, has_val, test))
    if test and trainer.is_global_zero:
        metrics.update(generate_samples(module, tokenizer, data, data_cfg, plan))
    metrics["wall_seconds"] = round(time.perf_counter() - started, 1)
    if trainer.is_global_zero:
        save_outputs(cfg, plan, metrics, module.model, tokenizer, data_cfg, trainer.loggers)
    return steps.numbers(metrics)


def load_data(cfg: DictConfig, data_cfg: DataConfig, tokenizer: Any) -> GenerationDataModule:
    """Read the prompt/response pairs (or chats), apply the chat template, tokenize."""
    data = GenerationDataModule(data_cfg, tokenizer, seed=cfg.seed)
    data.setup("fit")
    return data


def build_model(
    cfg: DictConfig,
    model_cfg: dict[str, Any],
    tokenizer: Any,
    data: GenerationDataModule,
    data_cfg: DataConfig,
) -> Any:
    """The causal LM, made trainable as the strategy says (full or LoRA); with packing, checked
    to keep packed examples apart before any training."""
    model = load_causal_lm(model_cfg, tokenizer)
    model = steps.apply_strategy(cfg, model, model_cfg)
    if data_cfg.packing:
        check_packing(model, data.datasets["train"].rows)
    return model


def build_task_module(cfg: DictConfig, model: Any, model_cfg: dict[str, Any]) -> CausalLMModule:
    optimizer, layer_decay, _ = optimizer_from_config(cfg.optimizer)  # no new head
    return CausalLMModule(
        scale.compiled(model, model_cfg.get("compile", False)),
        optimizer,
        instantiate(cfg.scheduler) if cfg.get("scheduler") else None,
        layer_decay=layer_decay,
    )


def build_trainer(cfg: DictConfig, plan: RunPlan, has_val: bool) -> tuple[L.Trainer, Any]:
    """The trainer, its best checkpoint by val/loss, and the configured logger. Evaluation runs
    under no_grad, not inference mode: the perplexity states that validate() before fit()
    leaves behind must stay updatable inside fit's validation loop."""
    checkpoint, checkpoints = checkpoint_callbacks(
        plan.out,
        "val/loss" if has_val else None,
        "min",
        cfg.get("checkpoint", {}).get("every_n_steps"),
    )
    callbacks = [
        *checkpoints,
        lifecycle.stop_callback(plan.out),
        *early_stopping(cfg, "val/loss", "min"),
        ReleaseFreedMemory(),
    ]
    logger = steps.logger_for(cfg, plan, run_name=None, group=None)
    trainer = steps.make_trainer(
        cfg, callbacks, logger, inference_mode=False, **budget.trainer_overrides(cfg)
    )
    return trainer, checkpoint


def score_before(
    trainer: L.Trainer, module: CausalLMModule, data: GenerationDataModule
) -> dict[str, float]:
    """The starting point: what fine-tuning is measured against (``before/val/*``; logged at
    step 0 with no epoch, not as the first epoch's validation)."""
    with loggers.held_back(trainer) as held:
        (before,) = trainer.validate(module, datamodule=data, verbose=False)
    scores = {f"before/{k}": float(v) for k, v in before.items()}
    loggers.log_outside_fit(held, scores, step=0)
    return scores


def generate_samples(
    module: CausalLMModule,
    tokenizer: Any,
    data: GenerationDataModule,
    data_cfg: DataConfig,
    plan: RunPlan,
) -> dict[str, float]:
    """Replies to the first ``data.generate_samples`` test prompts, scored (chrF, BLEU)."""
    sample = data.frames["test"].head(data_cfg.generate_samples)
    if not len(sample):
        return {}
    return score_generations(
        module.model,
        tokenizer,
        sample,
        data_cfg.max_new_tokens,
        plan.out / "generations.jsonl",
        prompt_budget(data_cfg.max_length, data_cfg.max_new_tokens),
    )


def save_outputs(
    cfg: DictConfig,
    plan: RunPlan,
    metrics: dict[str, Any],
    model: Any,
    tokenizer: Any,
    data_cfg: DataConfig,
    run_loggers: list[Any],
) -> None:
    """metrics.json, ``model/`` with its card, report.md (its figures also to TensorBoard or
    MLflow), then the push to the Hub if ``push_to_hub`` is set (rank 0)."""
    samples = read_generations(plan.out / "generations.jsonl", SAMPLES_SHOWN)
    card = generation_card(lifecycle.masked_config(cfg), metrics, samples)
    steps.save_results(cfg, plan, metrics, model, tokenizer, export_keys(data_cfg), card=card)
    for key in sorted(metrics):
        log.info("%s = %s", key, metrics[key])
    write_generation_report(plan.out, metrics, samples)
    logged.finish(run_loggers, plan.out)
    steps.push(cfg, plan)


def export_keys(data_cfg: DataConfig) -> dict[str, Any]:
    """``sftlab.json``: what predict.py needs to build the same prompts."""
    return {
        "task": "generation",
        "prompt_template": data_cfg.prompt_template,
        "prompt_column": data_cfg.prompt_column,
        "messages_column": data_cfg.messages_column,
        "cleaning": data_cfg.cleaning,
        "max_length": data_cfg.max_length,
        "max_chars": data_cfg.max_chars,
        "max_new_tokens": data_cfg.max_new_tokens,
    }
