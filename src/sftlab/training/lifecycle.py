"""What every training path does around ``trainer.fit``: write the run's config with secrets
masked, keep ``run.json`` current, resume from ``last.ckpt``, stop cleanly on a signal; and
around the whole run (``session``): how it ends is recorded and said in one line, its dir is
released, and a resumed run leaves no second dir behind."""

from __future__ import annotations

import contextlib
import csv
import logging
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lightning.pytorch as L
from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf

from sftlab.training.resume import LAST, RunPlan, read_checkpoint
from sftlab.training.stop_on_signal import StopOnSignal
from sftlab.utils import secrets
from sftlab.utils.cli import remove_created
from sftlab.utils.errors import SftlabError
from sftlab.utils.files import atomic_path, disk_full, write_text
from sftlab.utils.signals import Interrupted

log = logging.getLogger(__name__)


def _hydra_job_dir() -> Path:
    """The dir Hydra made for this command; a nonexistent path outside Hydra."""
    try:
        return Path(HydraConfig.get().runtime.output_dir)
    except ValueError:
        return Path("/nonexistent")


def masked_config(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config as plain containers, secrets masked: what files and loggers get."""
    return secrets.masked(OmegaConf.to_container(cfg, resolve=True))


def write_config(run: RunPlan) -> None:
    """``config.yaml`` (resolved, secrets masked); the secrets also leave Hydra's ``.hydra/``."""
    values = OmegaConf.to_container(run.cfg, resolve=True)
    write_text(run.out / "config.yaml", OmegaConf.to_yaml(OmegaConf.create(secrets.masked(values))))
    secrets.mask_hydra(run.cfg, run.out)


@contextmanager
def session(run: RunPlan, hydra_dir: Path | None = None) -> Iterator[None]:
    """Around all a run does after its plan (``train(cfg)``):

    - a resumed run logs into its own train.log, and the dir Hydra made for this command
      (``hydra_dir``, holding only Hydra's files) is removed at the end;
    - ``run.json`` never stays ``running``: an error marks it ``failed``, a signal
      ``interrupted`` (also during the test or the export, after training finished);
    - a full disk is one line saying how to continue; a signal after training says that only the
      test, the export or the report were cut short;
    - the run dir's lock is released at the end, on an error and on a signal.
    """
    shell = _hydra_job_dir() if hydra_dir is None else Path(os.path.abspath(hydra_dir))
    elsewhere = shell.is_dir() and shell.resolve() != run.out.resolve()
    if elsewhere:
        _log_into(run.out, shell)
    try:
        yield
    except Interrupted as stop:
        raise _stopped(run, stop) from None
    except SIGTERMException:  # Lightning's own handler (ours not installed): a SystemExit(0)
        raise _stopped(run, Interrupted(signal.SIGTERM)) from None
    except BaseException as e:
        if run.state.get("status") == "running":
            run.mark("interrupted" if isinstance(e, KeyboardInterrupt) else "failed")
        full = None if isinstance(e, SftlabError) else disk_full(e)
        if full is not None:
            raise SftlabError(_disk_full_line(full, run.out)) from e
        raise
    finally:
        run.release()
        if elsewhere:
            remove_created(shell)


def _stopped(run: RunPlan, stop: Interrupted) -> Interrupted:
    """``stop`` completed with what is true of the run: ``run.json`` says ``interrupted`` (also
    after training: a run stopped in its export had been marked finished), where it can
    resume from, and whether its training had finished."""
    if run.state.get("status") in ("running", "finished"):
        run.mark("interrupted")
    last = run.out / LAST
    stop.checkpoint = stop.checkpoint or (last if last.is_file() else None)
    stop.trained = bool(run.state.get("trained"))
    return stop


def _log_into(out: Path, shell: Path) -> None:
    """Hydra's log files in ``shell`` (train.log) continue in ``out``, appended to the resumed
    run's own, with what they hold so far."""
    root = logging.getLogger()
    for old in list(root.handlers):
        if not isinstance(old, logging.FileHandler) or Path(old.baseFilename).parent != shell:
            continue
        target = out / Path(old.baseFilename).name
        out.mkdir(parents=True, exist_ok=True)
        old.close()
        encoding = old.encoding or "utf-8"
        with (
            contextlib.suppress(OSError),
            open(old.baseFilename, encoding=encoding) as f,
            open(target, "a", encoding=encoding) as g,
        ):
            g.write(f.read())
        new = logging.FileHandler(target, encoding=encoding)
        new.setLevel(old.level)
        new.setFormatter(old.formatter)
        for each in old.filters:
            new.addFilter(each)
        root.removeHandler(old)
        root.addHandler(new)


def _disk_full_line(error: OSError, out: Path) -> str:
    where = error.filename or f"into {out}"
    then = (
        f"resume with python train.py resume={out}"
        if (out / LAST).is_file()
        else "start the run again"
    )
    return f"{error.strerror or 'no space left on device'} while writing {where}: free some space, then {then}"


class _TrainingDone(Callback):
    """Ends ``fit`` right after it restored ``last.ckpt``: the run's training finished in an
    earlier session, which a signal stopped during its test or export."""

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        trainer.should_stop = True


def fit(
    trainer: L.Trainer, module: L.LightningModule, data: L.LightningDataModule, run: RunPlan
) -> None:
    """``trainer.fit``, from ``run.ckpt`` when resuming; ``run.json`` records how it ended, and
    that training finished (``trained``): resumed then, fit only restores the state, the best
    checkpoint's included, and trains no step again."""
    run.save(status="running")
    if run.state.get("trained"):
        trainer.callbacks.append(_TrainingDone())
    try:
        trainer.fit(module, datamodule=data, ckpt_path=run.ckpt, weights_only=True)
    except Interrupted:
        run.mark("interrupted")
        raise
    except SIGTERMException:  # Lightning's own handler (before ours took over): a SystemExit(0)
        run.mark("interrupted")
        last = run.out / LAST
        raise Interrupted(signal.SIGTERM, last if last.is_file() else None) from None
    except BaseException:
        run.mark("failed")
        raise
    finally:
        _restore_csv_history(run)
    run.save(trained=True)  # what is left: the test, the export and the report


CSV_CUT = "csv_resumed_at"  # run.json: the step the set-aside metrics.csv rows are cut at


def keep_csv_history(trainer: L.Trainer, run: RunPlan) -> None:
    """Call when resuming, right after the Trainer is built and before anything logs.

    Lightning's CSVLogger deletes an existing metrics.csv when its writer starts, which is the
    first ``log_hyperparams``, ``validate`` or ``fit``. A resumed run moves the file aside here
    (and notes the checkpoint's step in run.json); ``fit`` merges the rows logged before that
    step back in front of the new ones."""
    from lightning.pytorch.loggers import CSVLogger

    if not run.ckpt or not trainer.is_global_zero:
        return
    for each in trainer.loggers:
        if not isinstance(each, CSVLogger):
            continue
        path = Path(each.log_dir) / "metrics.csv"
        aside = path.with_name("metrics.before-resume.csv")
        if aside.is_file() and path.is_file():  # an earlier resume was killed before merging
            try:
                _merge_csv(aside, path, run.state.get(CSV_CUT))
            except Exception as e:  # noqa: BLE001 - a torn file: keep both, never delete rows
                kept = path.with_name("metrics.unmerged.csv")
                log.warning("could not merge %s into %s (%s); kept as %s", aside, path, e, kept)
                path.replace(kept)
        if path.is_file() and path.stat().st_size:
            path.replace(aside)
        if aside.is_file():
            run.csv_history.append((aside, path, each))
    if run.csv_history:
        run.state[CSV_CUT] = _global_step(run.ckpt)


def _restore_csv_history(run: RunPlan) -> None:
    """After fit: the set-aside rows back in front of the resumed run's. A merge that fails
    (a torn file) leaves the set-aside copy where it is and never hides how fit ended."""
    for aside, path, logger in run.csv_history:
        try:
            _merge_csv(aside, path, run.state.get(CSV_CUT))
        except Exception as e:  # noqa: BLE001 - the log is secondary to the run's own result
            log.warning("could not merge %s into %s (%s); it is kept as it is", aside, path, e)
            continue
        # Its writer appends rows in the order of the keys it has seen: make those the merged
        # file's columns, or later rows (the test metrics) land in the wrong columns.
        if path.is_file() and logger._experiment is not None:
            logger.experiment.metrics_keys = _columns(path)
    run.csv_history = []


def _columns(path: Path) -> list[str]:
    """The header of a CSV file."""
    with path.open(newline="") as f:
        return next(csv.reader(f), [])


def _global_step(ckpt: Path) -> int | None:
    """The optimizer step a checkpoint was saved at (memory-mapped: no weights are read)."""
    step = read_checkpoint(ckpt, "start a new run without resume=", mmap=True).get("global_step")
    return None if step is None else int(step)


def _merge_csv(aside: Path, path: Path, resumed_at: int | None) -> None:
    """``path`` = the rows of ``aside`` logged before step ``resumed_at`` (the checkpoint's),
    then ``path``'s from that step on. Rows the stopped run logged after its checkpoint are
    logged again by the resumed one; rows a resumed run logs before fit (a starting-point
    validation at step 0) were logged by the first run already. With no known step, every row
    of both is kept."""
    import pandas as pd

    old = pd.read_csv(aside)
    new = pd.read_csv(path) if path.is_file() and path.stat().st_size else pd.DataFrame()
    if resumed_at is not None:
        if "step" in old:
            old = old[old["step"] < resumed_at]
        if "step" in new:
            new = new[new["step"] >= resumed_at]
    merged = pd.concat([old, new], ignore_index=True)
    for key in ("epoch", "step"):  # 8, not 8.0, as Lightning writes them
        if key in merged:
            merged[key] = merged[key].astype("Int64")
    merged = merged[sorted(merged.columns)]  # the order Lightning's CSV writer keeps its keys in
    with atomic_path(path) as tmp:
        merged.to_csv(tmp, index=False)
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
