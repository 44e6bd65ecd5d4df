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

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Interrupted(BaseException):  # noqa: N818 - like KeyboardInterrupt: not an Exception, so no
    # ``except Exception`` (a sweep's job guard, a library) swallows the stop
    """A run stopped by a signal; ``checkpoint`` is where it can resume from (or None)."""

    def __init__(self, signum: int, checkpoint: Path | None = None, trained: bool = False):
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)
        self.checkpoint = checkpoint
        self.trained = trained
        """Training had finished: the signal cut short the test, the export or the report."""

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
