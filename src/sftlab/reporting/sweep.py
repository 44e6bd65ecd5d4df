"""Multirun glue: a failed job does not end the sweep, and the sweep ends with a summary.

``SweepSummary`` is a Hydra callback (``hydra.callbacks`` in conf/train.yaml): after the last job
of ``python train.py -m ...`` it writes summary.csv, summary.md and plots into the multirun dir;
then, if any job failed, it names them in one line and the sweep exits 1.
"""

from __future__ import annotations

import logging
import math
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from sftlab.reporting.summary import Job, collect_jobs, summarize
from sftlab.utils import signals
from sftlab.utils.cli import interrupted_line

log = logging.getLogger(__name__)


def run_in_sweep(
    fn: Callable[[Any], dict[str, float]], cfg: Any, run_dir: str | None
) -> dict[str, float] | None:
    """Run one sweep job; on any error log it, leave ``error.txt`` in the job dir and return None.

    The sweep goes on with the next job; the summary lists this one as failed, the Optuna
    sweeper records the trial as failed (its objective is NaN, see ``fail_nan_trials``), and the
    sweep exits 1 at its end (``SweepSummary``).
    """
    signals.install()
    try:
        return fn(cfg)
    except signals.Interrupted as stop:  # the whole sweep stops, with a summary of what finished
        _stop_sweep(stop)
    except Exception as e:  # noqa: BLE001 - one bad job must not end a sweep of many
        log.error("job failed: %s: %s", type(e).__name__, e)
        if run_dir:
            Path(run_dir).mkdir(parents=True, exist_ok=True)
            (Path(run_dir) / "error.txt").write_text(
                traceback.format_exc() + f"\n{type(e).__name__}: {e}\n"
            )
        _finish_wandb()
        return None


def _stop_sweep(stop: BaseException) -> None:
    """Write the summary of the jobs so far (Hydra's end-of-sweep callback will not run), say how
    to resume the stopped job, exit 143 / 130."""
    _finish_wandb()
    hydra_cfg = HydraConfig.get()
    summary = (hydra_cfg.callbacks or {}).get("sweep_summary") or {}
    SweepSummary(summary.get("metric", "test/f1_macro")).write(Path(hydra_cfg.sweep.dir))
    print(interrupted_line(stop), file=sys.stderr)
    print(f"sweep stopped: summary of the finished jobs in {hydra_cfg.sweep.dir}", file=sys.stderr)
    sys.exit(stop.exit_code)


def objective(metrics: dict[str, float] | None, key: str) -> float:
    """The value an optimizing sweeper reads: the metric, or NaN for a failed or metric-less job."""
    if not metrics:
        return math.nan
    for name in (key, f"best_{key}"):  # val/f1_macro = the best epoch's value (best_val/f1_macro)
        if name in metrics:
            return float(metrics[name])
    log.error(
        "optimized_metric '%s' is not among the metrics: set optimized_metric=<one of %s>",
        key,
        ", ".join(sorted(metrics)),
    )
    return math.nan


def _finish_wandb() -> None:
    """A job that died mid-run must not leave its W&B run open for the next job."""
    wandb = sys.modules.get("wandb")
    if wandb is not None and getattr(wandb, "run", None) is not None:
        wandb.finish(exit_code=1)


def fail_nan_trials() -> None:
    """Make Optuna 2.x record a NaN objective as a FAILED trial instead of ending the study.

    hydra-optuna-sweeper 1.2 passes every job's return value to ``study.tell(state=COMPLETE)``;
    optuna 2.10 raises on NaN there and the sweeper re-raises, so one failed job would end the
    search. Optuna 3 does what this does (a NaN value fails the trial, the study goes on).
    """
    import optuna
    from optuna.trial import TrialState

    study_cls = optuna.study.Study
    if getattr(study_cls.tell, "_sftlab_nan_fails", False):
        return
    tell = study_cls.tell

    def tell_nan_as_fail(self, trial, values=None, state=None, **kwargs):
        vals = values if isinstance(values, (list, tuple)) else [values]
        has_nan = any(isinstance(v, float) and math.isnan(v) for v in vals if v is not None)
        if has_nan and state in (None, TrialState.COMPLETE, TrialState.FAIL):
            number = getattr(trial, "number", trial)
            log.warning("trial %s failed (objective is NaN); the study goes on", number)
            return tell(self, trial, values=None, state=TrialState.FAIL, **kwargs)
        return tell(self, trial, values=values, state=state, **kwargs)

    tell_nan_as_fail._sftlab_nan_fails = True  # type: ignore[attr-defined]
    study_cls.tell = tell_nan_as_fail


class SweepSummary(Callback):
    """Writes the sweep summary when a multirun ends (also when some of its jobs failed)."""

    def __init__(self, metric: str = "test/f1_macro", enabled: bool = True) -> None:
        self.metric = metric
        self.enabled = enabled

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if "optuna" in str(config.hydra.sweeper.get("_target_", "")).lower():
            fail_nan_trials()

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if self.enabled:
            self.write(sweep_dir)
        jobs = collect_jobs(sweep_dir)
        failed = [job for job in jobs if not job.ok]
        if failed:  # a scheduler or CI must see that the sweep is not all good
            print(failed_line(failed, len(jobs)), file=sys.stderr)
            sys.exit(1)

    def write(self, sweep_dir: Path) -> None:
        try:
            jobs = summarize(sweep_dir, self.metric)
        except Exception:  # noqa: BLE001 - the runs are done; a summary bug must not hide them
            log.exception("could not write the sweep summary into %s", sweep_dir)
            return
        if jobs:
            failed = sum(not j.ok for j in jobs)
            log.info(
                "sweep summary: %s (%d jobs, %d failed)",
                sweep_dir / "summary.md",
                len(jobs),
                failed,
            )


def failed_line(failed: list[Job], total: int) -> str:
    """One line naming the failed jobs: number, the overrides that set each apart, where to look."""
    names = []
    for job in failed:
        where = job.dir / "error.txt" if (job.dir / "error.txt").is_file() else job.dir
        names.append(f"#{job.num} {','.join(job.varying) or 'defaults'} ({where})")
    return f"sweep: {len(failed)} of {total} jobs failed: {'; '.join(names)}"
