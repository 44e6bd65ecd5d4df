"""The range table (config.ranges): a value of the right type outside its range is refused in
one line naming the key and the range; every shipped config is inside it; its keys are real."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from sftlab.config.checks import check_config
from sftlab.config.ranges import RANGES, check_ranges
from sftlab.config.signature import static_signature
from sftlab.utils.errors import SftlabError
from tests.conftest import CONF, TINY, compose_cfg

# (key, value, allowed): the edges of each kind of range.
EDGES = [
    ("optimizer.lr", 1e-5, True),
    ("optimizer.lr", 0, False),
    ("optimizer.lr", -0.1, False),
    ("optimizer.weight_decay", 0, True),
    ("optimizer.weight_decay", -0.01, False),
    ("optimizer.betas", [0.9, 0.999], True),
    ("optimizer.betas", [0.9, 1.0], False),
    ("optimizer.layer_decay", None, True),
    ("strategy.lr_range", [1e-3, 1e-1], True),
    ("strategy.lr_range", [1e-1, 1e-3], False),
    ("strategy.lr_range", [0, 1e-3], False),
    ("strategy.lr_range", 1e-3, False),
    ("optimizer.layer_decay", 0, False),
    ("scheduler.warmup_ratio", 0, True),
    ("scheduler.warmup_ratio", 1, False),
    ("scheduler.warmup_ratio", 5, False),
    ("model.dropout", None, True),
    ("model.dropout", 0.0, True),
    ("model.dropout", 1.0, False),
    ("model.dropout", 2.0, False),
    ("trainer.max_epochs", 1, True),
    ("trainer.max_epochs", 0, False),
    ("trainer.max_epochs", -2, False),
    ("trainer.devices", "auto", True),
    ("trainer.devices", -1, True),
    ("trainer.devices", [0, 1], True),
    ("trainer.devices", "0,1", True),
    ("trainer.devices", 0, False),
    ("trainer.devices", "0", False),
    ("trainer.devices", [], False),
    ("trainer.accumulate_grad_batches", 0, False),
    ("trainer.limit_val_batches", 0, True),
    ("trainer.limit_val_batches", 1.5, False),
    ("data.max_length", 8, True),
    ("data.max_length", "auto", True),
    ("data.max_length", 7, False),
    ("data.batch_size", 0, False),
    ("data.train_size", 0.5, True),
    ("data.train_size", 1.5, False),
    ("seed", -1, False),
    ("seed", True, False),
]


def _nested(key: str, value) -> dict:
    *parents, leaf = key.split(".")
    node = {leaf: value}
    for part in reversed(parents):
        node = {part: node}
    return node


@pytest.mark.parametrize(("key", "value", "allowed"), EDGES, ids=[f"{k}={v}" for k, v, _ in EDGES])
def test_edges(key, value, allowed):
    if allowed:
        check_ranges(_nested(key, value))
        return
    with pytest.raises(SftlabError) as err:
        check_ranges(_nested(key, value))
    message = str(err.value)
    assert message.startswith(f"{key} must be ") and message.endswith(f"got {value!r}")
    assert "\n" not in message


def test_unlimited_epochs_need_max_steps():
    with pytest.raises(SftlabError, match=r"trainer.max_epochs=-1 .* set trainer.max_steps=N"):
        check_ranges({"trainer": {"max_epochs": -1, "max_steps": -1}})
    check_ranges({"trainer": {"max_epochs": -1, "max_steps": 100}})


@pytest.mark.parametrize(
    "override",
    ["optimizer.lr=-0.1", "optimizer=sgd optimizer.momentum=1.5", "strategy=lora strategy.r=0"],
)
def test_the_check_applies_to_whichever_config_names_the_key(override, tmp_path):
    with pytest.raises(SftlabError, match=r"must be .*, got "):
        check_config(compose_cfg([*TINY, *override.split()], output_dir=tmp_path))


def _configs() -> list[str]:
    groups = ("trainer", "optimizer", "scheduler", "model", "strategy", "data")
    return [f"{g}={p.stem}" for g in groups for p in sorted((CONF / g).glob("*.yaml"))]


@pytest.mark.parametrize("choice", _configs())
def test_every_shipped_config_is_in_range(choice, tmp_path):
    cfg = compose_cfg([choice], output_dir=tmp_path)
    values = OmegaConf.to_container(cfg, resolve=True)
    values["data"].pop("path", None)  # '???' in data=files: the user's file
    check_ranges(values)


def test_the_trainer_keys_are_trainer_arguments():
    params = static_signature("lightning.pytorch.Trainer").params
    trainer_keys = [k.split(".", 1)[1] for k in RANGES if k.startswith("trainer.")]
    assert [k for k in trainer_keys if k not in params] == []
