"""Clean stops on SIGTERM and SIGINT: a checkpoint, one line saying how to resume, exit 143 / 130.

Outside ``trainer.fit`` the signal raises ``Interrupted`` at once (every file sftlab writes goes
through a temp name, so nothing is left half-written). During fit ``StopOnSignal`` only notes the
signal; the current batch finishes, ``last.ckpt`` is saved at that consistent point and
``Interrupted`` ends the run. A second Ctrl-C stops at once, without a checkpoint.

Lightning's own SIGTERM handling is replaced while training: it raises ``SIGTERMException``, a
``SystemExit`` without a code, so a stopped run would exit 0 and look finished to a scheduler.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any

import lightning.pytorch as L
from lightning.pytorch.callbacks import Callback

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Interrupted(BaseException):  # noqa: N818 - like KeyboardInterrupt: not an Exception, so no
    # ``except Exception`` (a sweep's job guard, a library) swallows the stop
    """A run stopped by a signal; ``checkpoint`` is where it can resume from (or None)."""

    def __init__(self, signum: int, checkpoint: Path | None = None):
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)
        self.checkpoint = checkpoint

    @property
    def exit_code(self) -> int:
        return 128 + self.signum  # the shell's convention: 143 for SIGTERM, 130 for SIGINT


def _raise(signum: int, frame: Any) -> None:
    raise Interrupted(signum)


def install() -> None:
    """SIGTERM and SIGINT raise ``Interrupted`` (entry points call this once)."""
    if threading.current_thread() is threading.main_thread():
        for signum in SIGNALS:
            signal.signal(signum, _raise)


class StopOnSignal(Callback):
    """Notes SIGTERM / SIGINT during fit; saves ``checkpoint`` after the current batch and raises."""

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
        self.stop_if_signalled(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}
        self.stop_if_signalled(trainer, save=False)  # the epoch-end last.ckpt is the resume point

    def stop_if_signalled(self, trainer: L.Trainer, save: bool = True) -> None:
        if self.received is None:
            return
        if save:
            trainer.save_checkpoint(self.checkpoint)
        raise Interrupted(self.received, self.checkpoint if self.checkpoint.exists() else None)
