"""What every training path does around ``trainer.fit``: write the run's config with secrets
masked, keep ``run.json`` current, resume from ``last.ckpt``, stop cleanly on a signal."""

from __future__ import annotations

import logging
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lightning.pytorch as L
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf

from sftlab import secrets
from sftlab.errors import SftlabError
from sftlab.files import write_text
from sftlab.resume import LAST, RunPlan
from sftlab.signals import Interrupted, StopOnSignal

log = logging.getLogger(__name__)


def masked_config(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config as plain containers, secrets masked: what files and loggers get."""
    return secrets.masked(OmegaConf.to_container(cfg, resolve=True))


def write_config(run: RunPlan) -> None:
    """``config.yaml`` (resolved, secrets masked); the secrets also leave Hydra's ``.hydra/``."""
    values = OmegaConf.to_container(run.cfg, resolve=True)
    write_text(run.out / "config.yaml", OmegaConf.to_yaml(OmegaConf.create(secrets.masked(values))))
    hidden = secrets.secret_values(values)
    for folder in {run.out / ".hydra", _hydra_dir() / ".hydra"}:
        secrets.mask_files(folder, hidden)


def _hydra_dir() -> Path:
    try:
        from hydra.core.hydra_config import HydraConfig

        return Path(HydraConfig.get().runtime.output_dir)
    except (ValueError, ImportError):
        return Path("/nonexistent")


def fit(
    trainer: L.Trainer, module: L.LightningModule, data: L.LightningDataModule, run: RunPlan
) -> None:
    """``trainer.fit``, from ``run.ckpt`` when resuming; ``run.json`` records how it ended."""
    run.save(status="running")
    try:
        trainer.fit(module, datamodule=data, ckpt_path=run.ckpt, weights_only=True)
    except Interrupted:
        run.save(status="interrupted")
        raise
    except SIGTERMException:  # Lightning's own handler (before ours took over): a SystemExit(0)
        run.save(status="interrupted")
        last = run.out / LAST
        raise Interrupted(signal.SIGTERM, last if last.is_file() else None) from None
    except BaseException:
        run.save(status="failed")
        raise


def stop_callback(out: Path) -> StopOnSignal:
    return StopOnSignal(out / LAST)


@contextmanager
def export_guard(out: Path) -> Iterator[None]:
    """An export that fails says how to export again; metrics and checkpoints stay."""
    try:
        yield
    except (Exception, SftlabError) as e:  # noqa: BLE001 - disk full, a model that cannot save
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise SftlabError(
            f"exporting {out / 'model'} failed ({first}); metrics.json and checkpoints/best.ckpt "
            f"are kept: export again with `python -m sftlab.export run={out} format=hf`"
        ) from e
