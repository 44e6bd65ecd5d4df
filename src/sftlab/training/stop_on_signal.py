"""``StopOnSignal``: the Lightning callback that turns SIGTERM / SIGINT during fit into a saved
``last.ckpt`` and ``Interrupted`` (``sftlab.utils.signals``) once the current batch is done, or,
when validation follows that batch, once the validation and its checkpoints are done."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any

import lightning.pytorch as L
from lightning.pytorch.callbacks import Checkpoint

from sftlab.training.resume import validation_follows
from sftlab.utils.signals import SIGNALS, Interrupted


class StopOnSignal(Checkpoint):
    """Notes SIGTERM / SIGINT during fit; saves ``checkpoint`` after the current batch and raises.

    A ``Checkpoint`` callback, so Lightning runs its hooks after the ``ModelCheckpoint`` ones:
    at an epoch end it stops after the best and last checkpoints of that epoch are saved."""

    def __init__(self, checkpoint: Path):
        self.checkpoint = Path(checkpoint)
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def _note(self, signum: int, frame: Any) -> None:
        if self.received is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now
        self.received = signum

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # After Lightning registered its handlers (it restores the previous ones at teardown).
        if threading.current_thread() is threading.main_thread():
            for signum in SIGNALS:
                self._previous[signum] = signal.signal(signum, self._note)

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        if not validation_follows(trainer):  # a checkpoint before it resumes past it
            self.stop_if_signalled(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.stop_if_signalled(trainer)  # a signal during the epoch's last batch or validation

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}
        self.stop_if_signalled(trainer, save=False)  # the epoch-end last.ckpt is the resume point

    def _agreed(self, trainer: L.Trainer) -> bool:
        """Whether any rank was signalled. Under DDP every rank must stop at the same step:
        one that stopped alone would leave the others waiting in the next collective forever
        (a signal may reach rank 0 only: Lightning starts the other ranks as its children)."""
        received = self.received is not None
        if trainer.world_size > 1:
            received = trainer.strategy.reduce_boolean_decision(received, all=False)
            if received and self.received is None:
                self.received = signal.SIGTERM  # another rank's signal
        return received

    def stop_if_signalled(self, trainer: L.Trainer, save: bool = True) -> None:
        if not self._agreed(trainer):
            return
        if save:
            trainer.save_checkpoint(self.checkpoint)
        raise Interrupted(self.received, self.checkpoint if self.checkpoint.exists() else None)
