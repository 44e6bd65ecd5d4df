"""Every resume point is exact: a run killed anywhere (SIGKILL: only what is on disk survives)
and resumed ends with the weights, the best checkpoint, the exported model and all test
metrics of the same run uninterrupted (tiny BERT, fp32 on the CPU).

The kills are copies of the run dir taken during one uninterrupted run
(``tests/helpers/snapshots.py``); test_resume.py kills real processes."""

from __future__ import annotations

import filecmp
import json
import random
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.conftest import TINY, compose_cfg
from tests.helpers.snapshots import Point, resume_copy, train_with_snapshots

# 2 epochs of 9 steps; last.ckpt at each epoch end only (the default).
TRAIN = ["data.batch_size=8", "strategy.lr=3e-3"]
RUN = [*TRAIN, "trainer.max_epochs=2"]
MID_EPOCH = random.Random(20).randrange(10, 18)  # in the second epoch, not its last step
POINTS = [
    Point("mid_epoch", "on_train_batch_end", MID_EPOCH),
    Point("epoch_end", "on_train_epoch_end", 9),  # right after the epoch-end last.ckpt
    Point("after_validation", "on_validation_end", 18),  # before that epoch's last.ckpt
    Point("during_test", "on_test_batch_end"),
    Point("during_export", "export"),
]
# 3 epochs, last.ckpt also every 3 steps (so one at an epoch's last step), and early stopping,
# which stops the run after its second epoch (the tiny model's val/f1_macro never improves).
VARIANT = ["trainer.max_epochs=3", "checkpoint.every_n_steps=3", "early_stopping.patience=1"]
VARIANT_POINTS = [
    Point("step_checkpoint_then_validation", "on_validation_end", 9),
    Point("test_after_early_stop", "on_test_batch_end"),
]


def _uninterrupted(base: Path, overrides: list[str], points: list[Point]):
    """(the run's own path, the finished run dir, its metrics, the copies)."""
    out = base / "run"
    metrics = train_with_snapshots(
        compose_cfg([*TINY, *overrides], output_dir=out), points, base / "copies"
    )
    whole = out.rename(base / "whole")
    return out, whole, metrics, base / "copies"


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    return _uninterrupted(tmp_path_factory.mktemp("points"), RUN, POINTS)


@pytest.fixture(scope="module")
def variant_run(tmp_path_factory):
    return _uninterrupted(tmp_path_factory.mktemp("variant"), [*TRAIN, *VARIANT], VARIANT_POINTS)


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)


def _assert_same_tensors(a: dict, b: dict, what: str) -> None:
    assert a.keys() == b.keys(), what
    for name, tensor in b.items():
        assert torch.allclose(a[name], tensor, rtol=0, atol=1e-6), f"{what}: {name}"


def _assert_same_run(resumed: dict, whole: dict, resumed_dir: Path, whole_dir: Path) -> None:
    keys = [k for k in whole if k.startswith(("test/", "val/", "best_"))]
    assert len(keys) > 20 and set(keys) <= set(resumed)
    for key in keys:
        assert resumed[key] == pytest.approx(whole[key], abs=1e-6), key
    assert resumed["epochs"] == whole["epochs"]
    for name in ("last.ckpt", "best.ckpt"):
        a, b = (_weights(d / "checkpoints" / name) for d in (resumed_dir, whole_dir))
        assert a["global_step"] == b["global_step"], name
        _assert_same_tensors(a["state_dict"], b["state_dict"], name)
    model = Path("model") / "model.safetensors"
    _assert_same_tensors(load_file(resumed_dir / model), load_file(whole_dir / model), "model/")
    assert json.loads((resumed_dir / "run.json").read_text())["status"] == "finished"


@pytest.mark.parametrize("point", [p.name for p in POINTS])
def test_a_run_killed_at_any_point_resumes_to_the_uninterrupted_result(default_run, point):
    out, whole, metrics, copies = default_run
    resumed = resume_copy(copies / point, out)
    _assert_same_run(resumed, metrics, out, whole)
    if point in ("during_test", "during_export"):  # training had finished: none again
        last = Path("checkpoints") / "last.ckpt"
        assert filecmp.cmp(copies / point / last, out / last, shallow=False)
    shutil.rmtree(out)


@pytest.mark.parametrize("point", [p.name for p in VARIANT_POINTS])
def test_step_checkpoints_and_early_stopping_resume_exactly(variant_run, point):
    """A step checkpoint at an epoch's last step came before that epoch's validation, which
    Lightning then skipped on resume; a run that stopped early trained on when resumed."""
    out, whole, metrics, copies = variant_run
    resumed = resume_copy(copies / point, out)
    assert metrics["epochs"] == 2  # stopped early: max_epochs is 3
    _assert_same_run(resumed, metrics, out, whole)
    shutil.rmtree(out)
