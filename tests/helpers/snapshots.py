"""A run dir as a SIGKILL at a chosen point would leave it: copies taken during one training run.

``train_with_snapshots(cfg, points, into)`` trains ``cfg`` once and copies its run dir, at each
point, to ``into / <point name>``. A point is a Lightning hook and the global step it fires at
(``Point("epoch_end", "on_train_epoch_end", 9)``), or ``"export"`` (as ``model/`` is written).
The copier is a ``Checkpoint`` callback, so Lightning runs it after the checkpoint callbacks:
the copy holds what those saved at that very hook, as a kill right after them would.

``resume_copy(copy, out)`` puts a copy back at the run's own path (checkpoints name their dir)
and resumes it there.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from lightning.pytorch.callbacks import Checkpoint
from omegaconf import DictConfig

from sftlab import train
from sftlab.recipes import steps
from tests.conftest import TINY, compose_cfg


@dataclass(frozen=True)
class Point:
    name: str
    hook: str
    """A Lightning hook: on_train_batch_end, on_validation_end, on_train_epoch_end (in fit) or
    on_test_batch_end; or "export"."""
    step: int | None = None
    """The trainer's global step when the hook fires; None: the first time it fires."""


class _Copier(Checkpoint):
    def __init__(self, out: Path, points: list[Point], into: Path):
        self.out, self.points, self.into = out, points, into

    def copy(self, trainer: Any, hook: str) -> None:
        for point in self.points:
            target = self.into / point.name
            at_step = point.step is None or point.step == trainer.global_step
            if point.hook == hook and at_step and not target.exists():
                shutil.copytree(self.out, target)

    def on_train_batch_end(self, trainer: Any, *args: Any) -> None:
        self.copy(trainer, "on_train_batch_end")

    def on_validation_end(self, trainer: Any, *args: Any) -> None:
        if trainer.state.fn == "fit":  # not the best checkpoint's validation after fit
            self.copy(trainer, "on_validation_end")

    def on_train_epoch_end(self, trainer: Any, *args: Any) -> None:
        self.copy(trainer, "on_train_epoch_end")

    def on_test_batch_end(self, trainer: Any, *args: Any) -> None:
        self.copy(trainer, "on_test_batch_end")


def train_with_snapshots(cfg: DictConfig, points: list[Point], into: Path) -> dict[str, float]:
    """Train ``cfg`` once; copy its run dir at each point into ``into``."""
    out = Path(cfg.output_dir)
    copier = _Copier(out, points, into)
    make_trainer, export_model = steps.make_trainer, steps.export_model

    def with_copier(cfg: DictConfig, callbacks: list[Any], *args: Any, **kwargs: Any) -> Any:
        return make_trainer(cfg, [*callbacks, copier], *args, **kwargs)

    def copy_then_export(*args: Any, **kwargs: Any) -> Any:
        for point in points:
            if point.hook == "export" and not (into / point.name).exists():
                shutil.copytree(out, into / point.name)
        return export_model(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(steps, "make_trainer", with_copier)
        patch.setattr(steps, "export_model", copy_then_export)
        metrics = train(cfg)
    missing = [p.name for p in points if not (into / p.name).is_dir()]
    assert not missing, f"the run never reached {missing}"
    return metrics


def resume_copy(copy: Path, out: Path) -> dict[str, float]:
    """Resume the run dir ``copy`` at its own path ``out`` (``resume=<dir>``), as after a kill."""
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(copy, out)
    # The snapshot was taken inside this process, so its run.lock names a live pid (this one);
    # a killed run's lock names a dead pid, which the resume takes over.
    (out / "run.lock").unlink(missing_ok=True)
    return train(compose_cfg([*TINY, f"resume={out}"], output_dir=out.parent / "unused"))
