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
    mask_hydra(run.cfg, run.out)


def mask_hydra(cfg: DictConfig, out: Path | None = None) -> None:
    """Mask the secrets in what Hydra wrote before sftlab ran (``.hydra/*.yaml``)."""
    hidden = secrets.secret_values(OmegaConf.to_container(cfg, resolve=True))
    for folder in {_hydra_dir() / ".hydra", *([out / ".hydra"] if out else [])}:
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
    history = _set_csv_history_aside(trainer) if run.ckpt else []
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
    finally:
        for aside, path in history:
            _merge_csv(aside, path)


def _set_csv_history_aside(trainer: L.Trainer) -> list[tuple[Path, Path]]:
    """Lightning's CSVLogger deletes an existing metrics.csv when it starts: a resumed run keeps
    the rows before its checkpoint by moving them aside and merging them back after fit."""
    from lightning.pytorch.loggers import CSVLogger

    moved = []
    for each in trainer.loggers:
        if isinstance(each, CSVLogger):
            path = Path(each.log_dir) / "metrics.csv"
            aside = path.with_name("metrics.before-resume.csv")
            if aside.is_file() and path.is_file():  # an earlier resume was killed before merging
                _merge_csv(aside, path)
            if path.is_file():
                path.replace(aside)
            if aside.is_file():
                moved.append((aside, path))
    return moved


def _merge_csv(aside: Path, path: Path) -> None:
    """``path`` = the rows of ``aside`` logged before ``path``'s first step, then ``path``'s."""
    import pandas as pd

    old = pd.read_csv(aside)
    new = pd.read_csv(path) if path.is_file() and path.stat().st_size else pd.DataFrame()
    if "step" in old and "step" in new and len(new):
        old = old[old["step"] < new["step"].min()]
    tmp = path.with_name(f".{path.name}.tmp")
    pd.concat([old, new], ignore_index=True).to_csv(tmp, index=False)
    tmp.replace(path)
    aside.unlink()


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
