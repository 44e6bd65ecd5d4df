"""The config check refuses a bad config in about a second: it runs before torch, Lightning and
transformers are imported, for every task."""

from __future__ import annotations

import json
import os
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


# Values of the right type that used to fail late (after the data and the model were loaded,
# leaving a run dir): each is refused by its range, in one line, before torch loads.
OUT_OF_RANGE = {
    "trainer.max_epochs=-1": "trainer.max_epochs=-1 trains without an end",
    "scheduler.warmup_ratio=5": "scheduler.warmup_ratio must be a number in [0, 1), got 5",
    "optimizer.lr=-0.1": "optimizer.lr must be a number > 0, got -0.1",
    "model.dropout=2.0": "model.dropout must be a number in [0, 1) or null, got 2.0",
    "trainer.devices=0": "trainer.devices must be a count >= 1, -1 (every device), 'auto'",
}


@pytest.mark.parametrize("override", sorted(OUT_OF_RANGE))
def test_a_value_out_of_range_is_refused_before_torch(override):
    result = _check([override])
    assert result["outcome"].startswith(f"error: {OUT_OF_RANGE[override]}")
    assert "\n" not in result["outcome"]
    assert result["heavy"] == []


@pytest.mark.parametrize("override", ["trainer.max_epochs=-1", "optimizer.lr=-0.1"])
def test_train_py_refuses_it_in_one_line_and_leaves_no_run_dir(override, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    run = tmp_path / "run"
    result = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            str(ROOT / "train.py"),
            override,
            f"hydra.run.dir={run}",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and errors[0].startswith(f"error: {OUT_OF_RANGE[override]}")
    assert "Traceback" not in result.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()}
    assert not {"torch", "lightning", "transformers"} & imported
    assert not run.exists()
