"""trainer.precision: auto picks what the hardware computes fast; runs record what they used."""

from __future__ import annotations

import json

import pytest
import torch

from sftlab import train
from sftlab.utils import hardware
from tests.conftest import TINY, compose_cfg


def _auto(monkeypatch, *, cuda: bool = False, cuda_bf16: bool = False, cpu_bf16: bool = False):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: cuda_bf16)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "Fake GPU")
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: cpu_bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    cfg = compose_cfg(["trainer.precision=auto"])
    hardware.resolve_trainer(cfg)
    return cfg.trainer.precision


def test_auto_precision_follows_the_hardware(monkeypatch):
    assert _auto(monkeypatch) == "32-true"  # a CPU without AVX512-BF16/AMX: bf16 is slow there
    assert _auto(monkeypatch, cpu_bf16=True) == "bf16-mixed"
    assert _auto(monkeypatch, cuda=True, cuda_bf16=True) == "bf16-mixed"
    assert _auto(monkeypatch, cuda=True, cuda_bf16=False) == "16-mixed"


def test_auto_is_the_default_and_explicit_values_are_kept(monkeypatch):
    assert compose_cfg([]).trainer.precision == "auto"
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    cfg = compose_cfg(["trainer.precision=bf16-mixed"])
    hardware.resolve_trainer(cfg)
    assert cfg.trainer.precision == "bf16-mixed"


def test_an_explicit_cpu_accelerator_ignores_a_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    cfg = compose_cfg(["trainer=cpu", "trainer.precision=auto"])
    hardware.resolve_trainer(cfg)
    assert cfg.trainer.precision == "32-true"
    assert hardware.device_of("cpu") == torch.device("cpu")


def test_metrics_json_records_precision_and_device(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    cfg = compose_cfg(
        [*TINY, "trainer.precision=auto", "trainer.fast_dev_run=true"], output_dir=tmp_path
    )
    with caplog.at_level("INFO", logger="sftlab.utils.hardware"):
        train(cfg)
    assert any("precision: auto -> 32-true on cpu" in r.message for r in caplog.records)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["precision"] == "32-true"
    assert saved["accelerator"] == "cpu"
    assert saved["processes"] == 1
    assert saved["train_samples_per_second"] > 0 and saved["train_tokens_per_second"] > 0
    assert hardware.cpu_name() in saved["device"] and "no native bf16" in saved["device"]
    assert "precision: 32-true" in (tmp_path / "config.yaml").read_text()


@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed", "16-mixed"])
def test_autocast_dtype(precision):
    expected = {"32-true": None, "bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}
    assert hardware.autocast_dtype(precision) == expected[precision]


def test_fused_adamw_clips_gradients_under_bf16(tiny_cfg):
    """The default (fused AdamW, gradient_clip_val 1.0) trains under bf16-mixed: Lightning alone
    refuses to clip for a fused optimizer, which stopped every bf16 run on a GPU."""
    cfg = tiny_cfg("trainer.precision=bf16-mixed", "trainer.fast_dev_run=true")
    assert cfg.optimizer.fused and cfg.trainer.gradient_clip_val
    train(cfg)


def _module():
    import lightning as L

    from sftlab.strategies.optim import OptimizerFromConfig

    class Module(OptimizerFromConfig, L.LightningModule):
        pass

    module = Module()
    module.model = torch.nn.Linear(4, 1)
    return module


def test_fused_is_off_under_a_loss_scaler(caplog):
    """16-mixed (a GradScaler, CUDA only): clipping must see unscaled gradients, which a fused
    step cannot give; the loop-based AdamW is used there."""
    import functools

    from lightning.pytorch.plugins.precision import MixedPrecision

    module = _module()
    module.optimizer_fn = functools.partial(torch.optim.AdamW, lr=1e-3, fused=True)
    module.scheduler_fn, module.layer_decay = None, None
    plugin = MixedPrecision("16-mixed", "cpu", scaler=torch.amp.GradScaler("cpu"))
    module._trainer = type(
        "T",
        (),
        {"precision_plugin": plugin, "precision": "16-mixed", "estimated_stepping_batches": 1},
    )()
    with caplog.at_level("INFO", logger="sftlab.strategies.optim"):
        optimizer = module.configure_optimizers()["optimizer"]
    assert not optimizer.defaults["fused"]
    assert any("optimizer.fused: off under 16-mixed" in r.message for r in caplog.records)
    module._trainer.precision_plugin = MixedPrecision("bf16-mixed", "cpu")  # no scaler: fused kept
    assert module.configure_optimizers()["optimizer"].defaults["fused"]


def test_clipping_without_a_scaler_bounds_the_gradient_norm():
    from lightning.pytorch.plugins.precision import MixedPrecision

    module = _module()
    weight = module.model.weight
    weight.grad = torch.full_like(weight, 10.0)
    module._trainer = type(
        "T", (), {"precision_plugin": MixedPrecision("bf16-mixed", "cpu"), "strategy": None}
    )()
    optimizer = torch.optim.AdamW([weight], fused=True)
    module.configure_gradient_clipping(optimizer, 1.0, "norm")
    assert weight.grad.norm().item() == pytest.approx(1.0, rel=1e-4)


def test_fsdp_clips_with_the_root_module_norm():
    """Lightning's FSDP plugin has no norm clipping; the default gradient_clip_val must still
    hold there, through FSDP's own clip_grad_norm_ on the sharded root."""
    from lightning.pytorch.strategies import FSDPStrategy

    calls = []
    strategy = FSDPStrategy()
    strategy.model = type("Root", (), {"clip_grad_norm_": lambda self, v: calls.append(v)})()
    module = _module()
    module._trainer = type("T", (), {"precision_plugin": None, "strategy": strategy})()
    module.configure_gradient_clipping(torch.optim.AdamW(module.model.parameters()), 1.0, "norm")
    assert calls == [1.0]
