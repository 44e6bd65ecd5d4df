"""`make bench`: sftlab against the Hugging Face Trainer (results in bench/results/).

Runs the whole-command comparison at equal settings (bench/trainer_compare.py) and the head-only
comparison (bench/head_only_speed.py). The batching study (bench/batching.py, ~25 runs) and the
step profile (bench/profile_step.py) run on their own.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import head_only_speed  # noqa: E402
import trainer_compare  # noqa: E402

if __name__ == "__main__":
    argv = sys.argv[:1]
    trainer_compare.main()
    sys.argv = argv
    head_only_speed.main()
