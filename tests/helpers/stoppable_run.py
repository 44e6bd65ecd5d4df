"""A tiny-BERT training run that pauses at one training step, so a test can stop it there.

``python tests/helpers/stoppable_run.py <run dir> <step> <seconds> [overrides...]``: at global step
``<step>`` it writes ``<run dir>.paused`` and sleeps ``<seconds>`` inside the training step; the
test then sends SIGKILL (the process dies mid-epoch) or SIGTERM (the step ends, then it stops).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

from sftlab import train  # noqa: E402
from sftlab.tasks.classification import SequenceClassifier  # noqa: E402
from sftlab.utils.cli import run_or_exit  # noqa: E402
from tests.conftest import TINY, compose_cfg  # noqa: E402


def main() -> None:
    out, step, seconds, *overrides = sys.argv[1:]
    marker = Path(f"{out}.paused")
    original = SequenceClassifier.training_step

    def training_step(self, batch, batch_idx):
        if self.trainer.global_step == int(step) and not marker.exists():
            marker.write_text(str(batch_idx))
            time.sleep(float(seconds))
        return original(self, batch, batch_idx)

    SequenceClassifier.training_step = training_step
    run_or_exit(train, compose_cfg([*TINY, *overrides], output_dir=Path(out)), out)


if __name__ == "__main__":
    main()
