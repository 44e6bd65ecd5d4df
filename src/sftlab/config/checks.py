"""The composed config, checked before any data is read or any file written.

One pass over what would otherwise fail deep inside a run (after tokenizing, loading the model,
creating a W&B run): value types against the signatures of the classes the config instantiates
(``trainer.*``, ``optimizer.*``, ``scheduler.*``) and the data config's fields, the range of
every numeric value (``config.ranges``), unknown keys,
``monitor`` / ``optimized_metric`` names the task never logs, and options that cannot act
together. Each failure is one ``SftlabError`` line naming the key and the fix.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import importlib.util
import inspect
import re
import types
import typing
from typing import Any, Literal, Union

from omegaconf import DictConfig, ListConfig, OmegaConf

from sftlab.config.data import DataConfig
from sftlab.config.metric_names import (
    PER_CLASS,
    RUN_KEYS,
    known_metrics,
    resolve_metric,
    safe_label,
)
from sftlab.config.ranges import check_ranges
from sftlab.config.signature import static_signature

__all__ = ["check_config", "check_metric", "resolve_metric", "safe_label"]
from sftlab.utils.errors import SftlabError

# Keys of a ``_target_`` node that sftlab reads itself (not passed to the target).
OWN_KEYS = {
    "_target_",
    "_partial_",
    "_recursive_",
    "_convert_",
    "_args_",
    "layer_decay",
    "head_lr_scale",
}
# The package each logger needs, by class name: Lightning's own error comes only once the run dir
# exists. tensorboard and mlflow come with sftlab's `loggers` extra (make install adds it).
LOGGER_PACKAGES = {
    "TensorBoardLogger": ("tensorboard", "tensorboardX"),
    "MLFlowLogger": ("mlflow",),
    "WandbLogger": ("wandb",),
    "CometLogger": ("comet_ml",),
    "NeptuneLogger": ("neptune",),
}
# Keys of conf/logger/wandb.yaml that sftlab reads itself.
LOGGER_OWN_KEYS = {"offline", "predictions", "model_artifact"}
# Values sftlab resolves before Lightning sees them.
OWN_VALUES = {"precision": {"auto"}, "max_epochs": {"auto"}}


def check_config(cfg: DictConfig) -> None:
    """Raise ``SftlabError`` on the first problem; returns quickly and touches no file."""
    values = _resolved(cfg)
    if values.get("monitor_mode") not in {"min", "max"}:
        raise SftlabError(
            f"monitor_mode must be 'min' or 'max', got {values.get('monitor_mode')!r}"
        )
    _require_type("seed", values.get("seed"), int)
    check_distributed_strategy(values.get("trainer") or {})  # e.g. deepspeed without its package
    for group in ("trainer", "optimizer", "scheduler"):
        if values.get(group):
            check_call(group, values[group])
    check_loggers(values.get("logger"))
    data = check_data(values.get("data") or {})
    check_ranges(values)  # the values of the right type, in range (lr > 0, 0 <= dropout < 1...)
    task = data.task
    check_metric("monitor", values.get("monitor"), task, data.labels)
    check_metric("optimized_metric", values.get("optimized_metric"), task, data.labels, final=True)
    _check_combinations(values, data)


def _resolved(cfg: DictConfig) -> dict[str, Any]:
    try:
        return OmegaConf.to_container(cfg, resolve=True)
    except Exception as e:  # noqa: BLE001 - an interpolation to a missing key or env var
        raise SftlabError(f"the config does not resolve: {str(e).splitlines()[0]}") from None


# -- types and unknown keys ------------------------------------------------------------------
def check_call(group: str, node: dict[str, Any]) -> None:
    """``node``'s keys and value types against the signature of its ``_target_``."""
    target = node.get("_target_")
    if not target:
        return
    params, open_ended = static_signature(target) or _imported_signature(group, target)
    names = [
        n
        for n, p in params.items()
        if n not in {"self", "params", "optimizer"}
        and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    for key, value in node.items():
        if key in OWN_KEYS:
            continue
        if key not in params:
            if open_ended:
                continue
            close = [n for n in names if n.startswith(key[:4])] or names
            raise SftlabError(
                f"unknown key {group}.{key}: {target} takes {', '.join(close[:12])}"
                f"{' ...' if len(close) > 12 else ''}"
            )
        if value in OWN_VALUES.get(key, ()):
            continue
        if not matches(value, params[key].annotation):
            raise SftlabError(
                f"{group}.{key}={value!r} has the wrong type: {target} expects {_describe(params[key].annotation)}"
            )


def logger_nodes(values: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """The resolved ``logger`` node's loggers by name: the group's entries (``logger=[csv,
    tensorboard]``), and ``logger._target_``'s as ``_target_`` (its arguments: the other
    top-level keys). Empty for logger=null."""
    values = values or {}
    named = {k: v for k, v in values.items() if isinstance(v, dict)}
    if values.get("_target_"):
        named["_target_"] = {k: v for k, v in values.items() if not isinstance(v, dict)}
    return named


def check_loggers(values: dict[str, Any] | None) -> None:
    """Each logger: a ``_target_``, keys its class takes, and its package installed."""
    for name, node in logger_nodes(values).items():
        key = "logger" if name == "_target_" else f"logger.{name}"
        target = node.get("_target_")
        if not target:
            raise SftlabError(
                f"{key} has no _target_: choose a logger with logger=[csv,tensorboard] "
                f"(the files in conf/logger/), or give +{key}._target_=<a Lightning logger class>"
            )
        needs = LOGGER_PACKAGES.get(str(target).rsplit(".", 1)[-1], ())
        if needs and not any(importlib.util.find_spec(n) for n in needs):
            package = {"mlflow": "mlflow-skinny"}.get(needs[0], needs[0])
            raise SftlabError(
                f"{key} ({target}) needs the {needs[0]} package: pip install {package} "
                "(`make install` installs it)"
            )
        check_call(key, {k: v for k, v in node.items() if k not in LOGGER_OWN_KEYS})


def _imported_signature(group: str, target: str) -> tuple[Any, bool]:
    """The signature of the imported target: for what ``static_signature`` cannot read."""
    try:
        from hydra.utils import get_object

        fn = get_object(target)
    except Exception:  # noqa: BLE001 - a typo in the target's import path
        raise SftlabError(
            f"{group}._target_={target} cannot be imported: check its spelling"
        ) from None
    call = fn.__init__ if inspect.isclass(fn) else fn
    try:
        params = inspect.signature(call, eval_str=True).parameters
    except (NameError, TypeError, ValueError):
        params = inspect.signature(call).parameters
    return params, any(p.kind == p.VAR_KEYWORD for p in params.values())


def check_data(values: dict[str, Any]) -> DataConfig:
    """The data config's value types, then its own validation (no file is read)."""
    hints = typing.get_type_hints(DataConfig)
    known = {f.name for f in dataclasses.fields(DataConfig)}
    for key, value in values.items():
        if key in known and value != "???" and not matches(value, hints[key]):
            raise SftlabError(
                f"data.{key}={value!r} has the wrong type: expected {_describe(hints[key])}"
            )
    if values.get("path") == "???":
        raise SftlabError("missing data.path=...: the file with your training rows (data=files)")
    try:
        return DataConfig.from_dict(values)
    except TypeError as e:  # a missing required key
        raise SftlabError(f"data config: {e}") from None


def matches(value: Any, ann: Any) -> bool:
    """Whether a config value fits a type annotation (numbers, strings, bools, unions,
    literals, lists, dicts); types a config cannot hold (tensors, callables) are not checked."""
    if ann is inspect.Parameter.empty or ann is Any or isinstance(ann, (str, typing.TypeVar)):
        return True
    if isinstance(value, (dict, DictConfig)) and "_target_" in value:
        return True  # a nested node Hydra instantiates (trainer.strategy: DDPStrategy)
    origin = typing.get_origin(ann)
    if origin in (Union, types.UnionType):
        return any(matches(value, a) for a in typing.get_args(ann))
    if origin is Literal:
        return value in typing.get_args(ann)
    if ann is type(None):
        return value is None
    if ann is bool:
        return isinstance(value, bool)
    if ann is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if ann is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if ann is str:
        return isinstance(value, str)
    container = origin or ann
    if container in (list, tuple, collections.abc.Sequence):
        return isinstance(value, (list, tuple, ListConfig))
    if container in (dict, collections.abc.Mapping):
        return isinstance(value, (dict, DictConfig))
    if isinstance(ann, type) and isinstance(value, (str, int, float, bool, list, dict)):
        return isinstance(value, ann)
    return True


def _describe(ann: Any) -> str:
    text = str(ann) if not isinstance(ann, type) else ann.__name__
    return text.replace("typing.", "").replace("NoneType", "None")


def _require_type(key: str, value: Any, kind: type) -> None:
    if not matches(value, kind):
        raise SftlabError(f"{key}={value!r} has the wrong type: expected {kind.__name__}")


# -- metric names ---------------------------------------------------------------------------
def check_metric(
    key: str, name: Any, task: str, labels: list[Any] | None, final: bool = False
) -> None:
    """``monitor`` (a val/* metric) or ``optimized_metric`` (also test/* and run numbers)."""
    if not isinstance(name, str) or not name:
        raise SftlabError(f"{key} must be a metric name such as val/f1_macro, got {name!r}")
    name = resolve_metric(name, task)
    if final and name.startswith("best_"):
        name = name[len("best_") :]
    if final and name in RUN_KEYS:
        return
    stage = name.split("/", 1)[0]
    allowed_stages = ("val", "test") if final else ("val",)
    if task == "generation" and key == "monitor" and name != "val/loss":
        raise SftlabError(
            f"monitor={name}: data.task=generation picks its best checkpoint by val/loss: set monitor=val/loss"
        )
    labels = [str(x) for x in labels] if labels is not None else None
    known = known_metrics(task, labels, stage) if stage in allowed_stages else set()
    if known is None:  # per-class names: checked again once the labels are read
        if stage in allowed_stages and _per_class_shape(name):
            return
        known = known_metrics(task, [], stage)
    if name not in known:
        examples = sorted(known_metrics(task, labels or [], "val") or [])
        raise SftlabError(
            f"{key}={name} is not a metric data.task={task} logs: use one of {', '.join(examples)}"
            + (" (or f1_<label> / recall_<label>)" if task == "classification" else "")
        )


def _per_class_shape(name: str) -> bool:
    metric = name.split("/", 1)[-1]
    return any(metric.startswith(f"{m}_") for m in PER_CLASS)


# -- combinations ---------------------------------------------------------------------------
# What the Hub accepts as a model repo id: ``name`` (the token's own namespace) or ``owner/name``.
REPO_ID = re.compile(r"^(?:[\w.-]+/)?[\w.-]{1,96}$")


def check_repo_id(repo_id: Any) -> None:
    """One line when ``push_to_hub`` cannot be a Hub model repo id (before any training)."""
    text = str(repo_id)
    if not REPO_ID.match(text) or ".." in text or "--" in text:
        raise SftlabError(
            f"push_to_hub={repo_id!r} is not a Hub repo id: use <user or org>/<name> "
            f"(letters, digits, '-', '_', '.')"
        )


def _check_hub(values: dict[str, Any]) -> None:
    """``push_to_hub`` and ``license``: what the upload and the model card need."""
    if values.get("push_to_hub") is not None:
        check_repo_id(values["push_to_hub"])
        if not values.get("export", True):
            raise SftlabError(
                "push_to_hub uploads model/, which export=false does not write: set export=true "
                "or push_to_hub=null"
            )
    license_id = values.get("license")
    if license_id is not None and (not isinstance(license_id, str) or not license_id.strip()):
        raise SftlabError(
            f"license={license_id!r} is not a license id: use a Hub license id such as "
            f"apache-2.0 or mit, or license=null"
        )


def _check_combinations(values: dict[str, Any], data: DataConfig) -> None:
    task = data.task
    _check_hub(values)
    strategy = values.get("strategy") or {}
    name = str((strategy.get("apply") or {}).get("_target_", "")).rsplit(".", 1)[-1]
    loss = values.get("loss") or {}
    model = values.get("model") or {}
    trainer = values.get("trainer") or {}
    if strategy.get("cache_features") and name != "head_only":
        raise SftlabError(
            f"strategy.cache_features needs a frozen body, strategy={name} trains it: "
            f"use strategy=head_only or set strategy.cache_features=false"
        )
    if loss.get("class_weights") not in (None, "auto") and task != "classification":
        raise SftlabError(
            f"loss.class_weights is for single-label classification: unset it for data.task={task}"
        )
    if loss.get("regression", "mse") != "mse" and task != "regression":
        raise SftlabError(
            f"loss.regression={loss['regression']} is for data.task=regression: unset it for data.task={task}"
        )
    if loss.get("regression") not in (None, "mse", "huber"):
        raise SftlabError(f"loss.regression must be mse or huber, got {loss.get('regression')!r}")
    if task != "multilabel" and (data.label_delimiter or data.threshold != 0.5):
        raise SftlabError(
            f"data.label_delimiter and data.threshold are for data.task=multilabel: unset them for data.task={task}"
        )
    if task == "generation":
        check_generation_strategy(name)
        if model.get("pooling"):
            raise SftlabError(
                "model.pooling is for classification heads: set model.pooling=null for data.task=generation"
            )
        if data.text_pair_column:
            raise SftlabError(
                "data.text_pair_column is for classification: unset it for data.task=generation"
            )
    if values.get("resume") and trainer.get("fast_dev_run"):
        raise SftlabError("trainer.fast_dev_run saves no checkpoints: drop it to resume a run")


# Lightning strategies that need a package sftlab does not install.
NEEDS = {"deepspeed": "deepspeed"}


def check_distributed_strategy(trainer_cfg: Any) -> None:
    """Fail in one line when ``trainer.strategy`` needs a package that is not installed."""
    strategy = trainer_cfg.get("strategy")
    text = str(strategy.get("_target_", "") if hasattr(strategy, "get") else strategy or "")
    for word, package in NEEDS.items():
        if word in text.lower() and importlib.util.find_spec(package) is None:
            raise SftlabError(
                f"trainer.strategy={word} needs the {package} package, which is not installed: "
                f"pip install {package} (with a CUDA toolkit), or use trainer=ddp or trainer=fsdp"
            )


GENERATION_STRATEGIES = ("full", "lora")


def check_generation_strategy(name: str) -> None:
    """The fine-tuning strategies that suit a causal LM (the others train or look for a
    classification head, and a causal LM's output layer is tied to its embeddings)."""
    if name not in GENERATION_STRATEGIES:
        raise SftlabError(
            f"strategy={name} is for classification heads: use strategy=full or strategy=lora "
            f"for data.task=generation"
        )
