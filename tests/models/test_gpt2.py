"""A tiny randomly initialised GPT-2 (built from a config) through both decoder paths:
generative SFT and classification with LoRA on its fused `c_attn` projection."""

from __future__ import annotations

import json

from sftlab import train
from tests.conftest import TINY_CSV, compose_cfg
from tests.helpers.generation import GEN

GPT2 = [
    "~model.config",
    "+model.config={model_type:gpt2,n_embd:32,n_layer:2,n_head:2,n_positions:256}",
]


def test_tiny_gpt2_generative_sft_with_packing(tmp_path):
    out = tmp_path / "run"
    overrides = [*GEN, *GPT2, "data.packing=true", "data.max_new_tokens=4", "trainer.max_epochs=1"]
    metrics = train(compose_cfg(overrides, output_dir=out))
    assert metrics["val/perplexity"] > 1 and metrics["test/generated"] > 0
    assert json.loads((out / "model" / "config.json").read_text())["model_type"] == "gpt2"


def test_tiny_gpt2_classifier_with_lora(tmp_path):
    out = tmp_path / "run"
    overrides = [
        "model=tiny_llama",
        *GPT2,
        "data=files",
        f"data.path={TINY_CSV}",
        "strategy=lora",
        "trainer=cpu",
        "trainer.precision=32",
        "trainer.max_epochs=1",
        "trainer.enable_progress_bar=false",
        "logger=csv",
    ]
    metrics = train(compose_cfg(overrides, output_dir=out))
    assert 0 < metrics["trainable_params"] < metrics["total_params"] / 10
    saved = json.loads((out / "model" / "config.json").read_text())
    assert saved["architectures"] == ["GPT2ForSequenceClassification"]  # LoRA merged away
    assert "test/acc" in metrics
