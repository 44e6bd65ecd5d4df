"""`make bench`: run the benchmarks against the Hugging Face Trainer (results in bench/results/)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import full_finetune_speed  # noqa: E402
import head_only_speed  # noqa: E402

if __name__ == "__main__":
    head_only_speed.main()
    sys.argv = sys.argv[:1]
    full_finetune_speed.main()
