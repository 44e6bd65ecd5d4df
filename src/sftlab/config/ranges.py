"""The allowed values of every numeric setting, checked with the types, before torch loads.

A value of the right type can still fail late, deep inside a run, after the data and the model
are loaded: ``optimizer.lr=-0.1`` in the optimizer, ``model.dropout=2.0`` when the model is
built, ``trainer.devices=0`` in the Trainer, ``trainer.max_epochs=-1`` in the learning-rate
schedule. ``RANGES`` names the allowed values of each numeric key of the groups a run reads
(whichever optimizer or scheduler the config names); ``check_ranges`` refuses the first value
outside them in one line naming the key and the range.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sftlab.utils.errors import SftlabError


@dataclass(frozen=True)
class Rule:
    """What a key allows: a test and the words that name it in a message."""

    allows: Callable[[Any], bool]
    text: str

    def __or__(self, other: Rule) -> Rule:
        return Rule(lambda v: self.allows(v) or other.allows(v), f"{self.text} or {other.text}")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def count(low: int, what: str = "an integer") -> Rule:
    return Rule(lambda v: _is_int(v) and v >= low, f"{what} >= {low}")


def above(low: float, what: str = "a number") -> Rule:
    return Rule(lambda v: _is_number(v) and v > low, f"{what} > {low}")


def at_least(low: float) -> Rule:
    return Rule(lambda v: _is_number(v) and v >= low, f"a number >= {low}")


def within(
    low: float, high: float, *, low_in: bool = True, high_in: bool = False, what: str = "a number"
) -> Rule:
    """A number between ``low`` and ``high``, each end included or not (``[0, 1)``)."""

    def allows(v: Any) -> bool:
        return (
            _is_number(v)
            and (low <= v if low_in else low < v)
            and (v <= high if high_in else v < high)
        )

    return Rule(allows, f"{what} in {'[' if low_in else '('}{low}, {high}{']' if high_in else ')'}")


def value(*allowed: Any, text: str | None = None) -> Rule:
    """One of the given values (``null``, ``'auto'``, ``-1``)."""
    return Rule(
        lambda v: any(v == a and type(v) is type(a) for a in allowed),
        text or " or ".join("null" if a is None else repr(a) for a in allowed),
    )


def _devices(v: Any) -> bool:
    """Lightning's ``devices``: a count (-1: every device), ``auto``, or device indices as a
    list or a comma-separated string."""
    if v == "auto":
        return True
    if isinstance(v, str):
        parts = [p.strip() for p in v.split(",") if p.strip()]
        if not parts or not all(p.lstrip("-").isdigit() for p in parts):
            return False
        v = [int(p) for p in parts] if "," in v else int(parts[0])
    if _is_int(v):
        return v >= 1 or v == -1
    return isinstance(v, (list, tuple)) and len(v) > 0 and all(_is_int(i) and i >= 0 for i in v)


def _betas(v: Any) -> bool:
    return isinstance(v, (list, tuple)) and len(v) == 2 and all(within(0, 1).allows(b) for b in v)


def _lr_range(v: Any) -> bool:
    return (
        isinstance(v, (list, tuple))
        and len(v) == 2
        and all(_is_number(x) for x in v)
        and 0 < v[0] < v[1]
    )


NULL = value(None)
FRACTION = within(0, 1)  # [0, 1)
# A Trainer's limit_*_batches: a fraction of the batches or a number of them.
BATCH_LIMIT = within(0, 1, high_in=True) | count(0, "a number of batches") | NULL

RANGES: dict[str, Rule] = {
    "seed": Rule(lambda v: _is_int(v) and 0 <= v < 2**32, "an integer in [0, 2**32)"),
    "checkpoint.every_n_steps": Rule(
        lambda v: v is None or (_is_int(v) and v > 0), "a positive number of steps or null"
    ),
    "early_stopping.patience": count(0) | NULL,
    "early_stopping.min_delta": at_least(0),
    "loss.huber_delta": above(0),
    # trainer (lightning.pytorch.Trainer)
    "trainer.max_epochs": count(1)
    | value("auto", text="auto (from the training split's size: budget.*)")
    | value(-1, text="-1 (no limit, with trainer.max_steps)")
    | NULL,
    "budget.min_steps": count(1),
    "budget.max_epochs": count(1),
    "trainer.min_epochs": count(0) | NULL,
    "trainer.max_steps": count(1) | value(-1, text="-1 (no limit)"),
    "trainer.min_steps": count(0) | NULL,
    "trainer.devices": Rule(
        _devices, "a count >= 1, -1 (every device), 'auto' or a list of device indices"
    ),
    "trainer.num_nodes": count(1),
    "trainer.accumulate_grad_batches": count(1),
    "trainer.gradient_clip_val": at_least(0) | NULL,
    "trainer.log_every_n_steps": count(0) | NULL,
    "trainer.check_val_every_n_epoch": count(1) | NULL,
    "trainer.val_check_interval": within(0, 1, low_in=False, high_in=True)
    | count(1, "a number of batches")
    | NULL,
    "trainer.num_sanity_val_steps": count(-1) | NULL,
    "trainer.limit_train_batches": BATCH_LIMIT,
    "trainer.limit_val_batches": BATCH_LIMIT,
    "trainer.limit_test_batches": BATCH_LIMIT,
    "trainer.limit_predict_batches": BATCH_LIMIT,
    "trainer.fast_dev_run": Rule(
        lambda v: isinstance(v, bool) or (_is_int(v) and v >= 0), "true, false or a number >= 0"
    ),
    "trainer.reload_dataloaders_every_n_epochs": count(0),
    # optimizer (whichever torch.optim class it names), scheduler (sftlab.training.schedules)
    "optimizer.lr": above(0),
    "optimizer.weight_decay": at_least(0),
    "optimizer.momentum": FRACTION,
    "optimizer.dampening": within(0, 1, high_in=True),
    "optimizer.eps": above(0),
    "optimizer.betas": Rule(_betas, "two numbers in [0, 1)"),
    "optimizer.layer_decay": within(0, 1, low_in=False, high_in=True) | NULL,
    "optimizer.head_lr_scale": above(0) | NULL,
    "scheduler.warmup_ratio": FRACTION,
    # model, strategy
    "model.dropout": FRACTION | NULL,
    "strategy.lr": above(0),
    "strategy.lr_range": Rule(_lr_range, "[low, high] with 0 < low < high"),
    "strategy.k": count(1),
    "strategy.every_n_epochs": above(0),
    "strategy.r": count(1),
    "strategy.alpha": above(0),
    "strategy.dropout": FRACTION,
    "strategy.cache_max_memory_mb": at_least(0),
    # data (sftlab.config.data.DataConfig, which checks these too)
    "data.max_length": count(8, "a number of tokens") | value("auto"),
    "data.max_chars": count(1) | NULL,
    "data.batch_size": count(1),
    "data.eval_batch_size": count(1),
    "data.num_workers": count(0),
    "data.train_size": Rule(
        lambda v: v is None or (_is_int(v) and v >= 1) or (isinstance(v, float) and 0 < v <= 1),
        "a count >= 1 or a fraction in (0, 1]",
    ),
    "data.train_per_class": count(1) | NULL,
    "data.threshold": within(0, 1, low_in=False, what="a probability") | value("tune"),
    "data.max_new_tokens": count(1),
    "data.generate_samples": count(0),
}


# serve.py's own settings (conf/serve.yaml), checked before the model loads
SERVE_RANGES: dict[str, Rule] = {
    "port": Rule(lambda v: _is_int(v) and 0 <= v <= 65535, "a TCP port (0-65535)"),
    "batch_size": count(1),
    "max_texts": count(1),
    "max_body_mb": above(0),
    "max_text_chars": count(1) | NULL,
}


def check_ranges(values: dict[str, Any], table: dict[str, Rule] | None = None) -> None:
    """Refuse the first key of ``table`` (``RANGES``) whose value in ``values`` (the resolved
    config, or a part of it under its group's name) is outside its range. Keys that are absent
    pass."""
    for key, rule in (RANGES if table is None else table).items():
        node: Any = values
        for part in key.split("."):
            node = node.get(part, _ABSENT) if isinstance(node, dict) else _ABSENT
        if node is not _ABSENT and node != "???" and not rule.allows(node):
            raise SftlabError(f"{key} must be {rule.text}, got {node!r}")
    trainer = values.get("trainer")
    if (
        isinstance(trainer, dict)
        and trainer.get("max_epochs") == -1
        and trainer.get("max_steps", -1) == -1
    ):
        raise SftlabError(
            "trainer.max_epochs=-1 trains without an end, but the learning-rate schedule "
            "needs a number of steps: set trainer.max_steps=N as well, or a number of epochs"
        )


_ABSENT = object()
