"""The config check refuses a bad config in about a second: it runs before torch, Lightning and
transformers are imported, for every task."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TINY_CSV = ROOT / "tests" / "assets" / "tiny.csv"
HEAVY = ("torch", "lightning", "transformers", "torchmetrics", "peft")

# Composes the config, runs the check, prints the outcome and the heavy modules imported.
SCRIPT = """
import json, sys
from hydra import compose, initialize_config_dir
from sftlab.config.checks import check_config
from sftlab.utils.errors import SftlabError

heavy = sys.argv[2].split(",")
with initialize_config_dir(config_dir=sys.argv[1], version_base="1.3"):
    cfg = compose("train", overrides=sys.argv[3:])
try:
    check_config(cfg)
    outcome = "ok"
except SftlabError as e:
    outcome = "error: " + str(e)
loaded = sorted(m for m in sys.modules if m.split(".")[0] in heavy)
print(json.dumps({"outcome": outcome, "heavy": loaded}))
"""

TASKS = {
    "classification": [],
    "regression": ["data=vader_sentences"],
    "multilabel": ["data=files", f"data.path={TINY_CSV}", "data.task=multilabel"],
    "generation": ["data=chitchat", "model=tiny_llama"],
}


def _check(overrides: list[str]) -> dict:
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            SCRIPT,
            str(ROOT / "conf"),
            ",".join(HEAVY),
            "output_dir=/tmp/x",
            *overrides,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("task", sorted(TASKS))
def test_the_config_check_imports_no_torch(task):
    result = _check(TASKS[task])
    assert result["outcome"] == "ok"
    assert result["heavy"] == []


@pytest.mark.parametrize("task", sorted(TASKS))
def test_a_bad_value_is_refused_before_torch(task):
    result = _check([*TASKS[task], "optimizer.lr=fast"])
    assert result["outcome"].startswith("error: optimizer.lr")
    assert result["heavy"] == []
