"""``<run>/model`` again from a run's checkpoint (``python -m sftlab.export format=hf``): after
an export that failed, or from another checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

from hydra.utils import instantiate
from omegaconf import OmegaConf

from sftlab import strategies
from sftlab.config.data import DataConfig
from sftlab.export.hf_folder import export_model, model_extra
from sftlab.export.model_card import model_card
from sftlab.models.backbone import load_model, load_tokenizer
from sftlab.models.causal import resolved_model_cfg
from sftlab.models.split import split_model
from sftlab.tasks.build import build_module
from sftlab.training import resume
from sftlab.training.features import CachedHead
from sftlab.utils.errors import SftlabError
from sftlab.utils.secrets import masked


def export_from_checkpoint(run: str | Path, checkpoint: str = "best") -> Path:
    """Rebuild the run's model from its config, load ``checkpoints/<checkpoint>.ckpt`` and
    write ``<run>/model`` (the old folder is replaced only once the new one is complete)."""
    run_dir = Path(run)
    ckpt = run_dir / "checkpoints" / f"{checkpoint}.ckpt"
    if not (run_dir / "config.yaml").is_file() or not ckpt.is_file():
        raise SftlabError(
            f"run={run_dir} needs config.yaml and {ckpt.relative_to(run_dir)}: pass a run dir "
            f"that trained at least one epoch"
        )
    cfg = OmegaConf.load(run_dir / "config.yaml")
    data_cfg = DataConfig.from_dict(OmegaConf.to_container(cfg.data, resolve=True))
    if data_cfg.task == "generation":
        raise SftlabError("format=hf re-exports classifiers; for data.task=generation train again")
    labels = resume.read_state(run_dir).get("labels")
    if not labels:
        raise SftlabError(f"{run_dir / resume.RUN_FILE} records no labels: train the run again")
    model_cfg = resolved_model_cfg(OmegaConf.to_container(cfg.model, resolve=True))
    tokenizer = load_tokenizer(model_cfg)
    model = instantiate(cfg.strategy.apply)(load_model(model_cfg, labels, tokenizer))
    trained = CachedHead(*split_model(model)[1:]) if cfg.strategy.get("cache_features") else model
    module = build_module(cfg, data_cfg, trained, labels, optimizer=None)
    resume.load_weights(module, ckpt)
    metrics_file = run_dir / "metrics.json"
    metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
    target = export_model(
        strategies.prepare_for_export(model),
        tokenizer,
        run_dir / "model",
        extra=model_extra(cfg, data_cfg, module, labels),
        card=model_card(masked(OmegaConf.to_container(cfg, resolve=True)), metrics, labels),
    )
    print(f"wrote {target} from {ckpt}")
    return target
