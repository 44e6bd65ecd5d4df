"""Switches for larger runs: early stopping, gradient checkpointing, torch.compile, and the
distributed trainer configs (ddp, fsdp, deepspeed)."""

from __future__ import annotations

import importlib.util
import json

import pytest
import torch
from hydra.utils import instantiate
from safetensors.torch import load_file

from sftlab import train
from sftlab.models.backbone import load_model, load_tokenizer
from sftlab.models.speed import scale
from sftlab.training.callbacks import early_stopping
from sftlab.utils.errors import SftlabError
from tests.conftest import compose_cfg


def test_early_stopping_ends_a_run_that_stops_improving(tiny_cfg):
    """With a learning rate of 1e-12 val/f1_macro never improves: patience 1 stops after 2 epochs."""
    cfg = tiny_cfg(
        "trainer.max_epochs=6", "strategy.lr=1e-12", "early_stopping.patience=1", "test=false"
    )
    metrics = train(cfg)
    assert metrics["epochs"] == 2  # epoch 0 sets the best, epoch 1 does not beat it: stop


def test_early_stopping_is_off_by_default_and_checks_patience():
    cfg = compose_cfg([])
    assert cfg.early_stopping.patience is None
    assert early_stopping(cfg, "val/f1_macro", "max") == []
    bad = compose_cfg(["early_stopping.patience=0"])
    with pytest.raises(SftlabError, match="early_stopping.patience must be"):
        early_stopping(bad, "val/f1_macro", "max")


def _tiny_model():
    cfg = compose_cfg(["model=tiny_bert", "model.dropout=0"])
    tokenizer = load_tokenizer(cfg.model)
    return load_model(cfg.model, ["a", "b"], tokenizer), tokenizer


def test_gradient_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    plain, tokenizer = _tiny_model()
    checkpointed, _ = _tiny_model()
    checkpointed.load_state_dict(plain.state_dict())
    scale.gradient_checkpointing(checkpointed, True)
    on = "is_activation_checkpointing"
    on = on if hasattr(plain, on) else "is_gradient_checkpointing"
    assert getattr(checkpointed, on) and not getattr(plain, on)
    batch = tokenizer(
        ["a short text", "another longer text here"], padding=True, return_tensors="pt"
    )
    for model in (plain, checkpointed):
        model.train()
        model(**batch, labels=torch.tensor([0, 1])).loss.backward()
    for (name, a), b in zip(plain.named_parameters(), checkpointed.parameters(), strict=True):
        assert torch.allclose(a.grad, b.grad, atol=1e-6), name


def test_compile_keeps_parameter_names():
    """In-place compile: no `_orig_mod.` prefix in the state dict (torch.compile(model) adds one)."""
    model, _ = _tiny_model()
    names = list(model.state_dict())
    assert list(scale.compiled(model, True).state_dict()) == names
    assert "_orig_mod." in next(iter(torch.compile(model).state_dict()))


@pytest.mark.slow
def test_compiled_run_exports_plain_weights(tiny_cfg, tmp_path):
    """A compiled run (inductor on the CPU) trains, and its checkpoint and export carry the
    model's own parameter names."""
    metrics = train(tiny_cfg("model.compile=true", "model.gradient_checkpointing=true"))
    run = tmp_path / "run"
    ckpt = torch.load(run / "checkpoints" / "best.ckpt", weights_only=False)["state_dict"]
    exported = load_file(run / "model" / "model.safetensors")
    assert not [k for k in [*ckpt, *exported] if "_orig_mod" in k]
    assert json.loads((run / "metrics.json").read_text())["epochs"] == metrics["epochs"]


@pytest.mark.parametrize("name", ["ddp", "fsdp"])
def test_distributed_strategy_configs_instantiate(name):
    cfg = compose_cfg([f"trainer={name}"])
    strategy = instantiate(cfg.trainer.strategy)
    assert type(strategy).__name__ == {"ddp": "DDPStrategy", "fsdp": "FSDPStrategy"}[name]


@pytest.mark.skipif(importlib.util.find_spec("deepspeed") is not None, reason="deepspeed is here")
def test_deepspeed_without_the_package_is_one_clear_line(tiny_cfg, tmp_path):
    with pytest.raises(SftlabError, match="needs the deepspeed package.*pip install deepspeed"):
        train(tiny_cfg("trainer=deepspeed"))
    assert not (tmp_path / "run" / "config.yaml").exists()  # failed before writing anything
