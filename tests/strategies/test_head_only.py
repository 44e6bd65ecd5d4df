"""Head-only on cached features, mean pooling, and model/ folders that load without sftlab."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest
import torch
from safetensors.torch import load_file
from transformers import pipeline

from sftlab import train
from sftlab.data.datamodule import DataConfig, TextDataModule
from sftlab.models.backbone import load_tokenizer
from tests.conftest import TINY, compose_cfg


def run(out, *overrides: str):
    return train(compose_cfg([*TINY, *overrides], output_dir=out))


RUN = ["strategy=head_only", "trainer.max_epochs=2", "data.batch_size=8", "model.dropout=0.0"]


def test_cached_features_give_the_same_run_as_the_frozen_body_every_step(tmp_path):
    cached = run(tmp_path / "cached", *RUN)
    direct = run(tmp_path / "direct", *RUN, "strategy.cache_features=false")
    for key in ("test/acc", "test/f1_macro", "best_val/f1_macro"):
        assert cached[key] == pytest.approx(direct[key], abs=1e-6), key
    a = load_file(tmp_path / "cached" / "model" / "model.safetensors")
    b = load_file(tmp_path / "direct" / "model" / "model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-5, rtol=1e-4, msg=key)
    assert not torch.equal(a["classifier.weight"], torch.zeros_like(a["classifier.weight"]))


def test_cached_features_spill_to_disk_when_large(tmp_path):
    out = tmp_path / "disk"
    metrics = run(out, *RUN, "strategy.cache_max_memory_mb=0")
    assert (out / "features" / "train.npy").exists()
    assert 0 <= metrics["test/acc"] <= 1


LOAD_WITHOUT_SFTLAB = textwrap.dedent(
    """
    import json, sys, importlib.util
    from pathlib import Path
    sys.path[:] = [p for p in sys.path if p and not (Path(p) / "sftlab").exists()]
    assert importlib.util.find_spec("sftlab") is None, "sftlab is still importable"
    from transformers import pipeline
    model_dir, texts = sys.argv[1], json.loads(sys.argv[2])
    clf = pipeline("text-classification", model=model_dir, trust_remote_code=True, device="cpu")
    print(json.dumps([p["label"] for p in clf(texts, truncation=True, max_length=128)]))
    """
)


def test_mean_pooled_model_exports_and_loads_without_sftlab(tiny_cfg, tmp_path):
    out = tmp_path / "run"
    cfg = tiny_cfg(
        "strategy=head_only", "model.pooling=mean", "trainer.max_epochs=3", "data.batch_size=8"
    )
    metrics = train(cfg)
    model_dir = tmp_path / "copied_model"  # a plain folder, away from the run and the sources
    shutil.copytree(out / "model", model_dir)
    config = json.loads((model_dir / "config.json").read_text())
    assert config["pooling"] == "mean"
    assert config["auto_map"]["AutoModelForSequenceClassification"].startswith("modeling_pooled.")
    assert "sftlab" not in (model_dir / "modeling_pooled.py").read_text().split('"""', 2)[
        2
    ].replace("sftlab_pooled", "")

    dm = TextDataModule(
        DataConfig.from_dict(dict(cfg.data)), load_tokenizer(cfg.model), seed=cfg.seed
    )
    test = dm.load_frames()["test"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [
            sys.executable,
            "-I",
            "-c",
            LOAD_WITHOUT_SFTLAB,
            str(model_dir),
            json.dumps(test["text"].tolist()),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    preds = json.loads(result.stdout.strip().splitlines()[-1])
    assert (test["label"] == preds).mean() == pytest.approx(metrics["test/acc"], abs=1e-6)


def test_lora_exports_merged_folder_and_adapter_only(tmp_path):
    merged = run(tmp_path / "merged", "strategy=lora", "trainer.max_epochs=1")
    model_dir = tmp_path / "merged" / "model"
    assert not (model_dir / "adapter_config.json").exists()
    assert not any("lora" in k for k in load_file(model_dir / "model.safetensors"))
    clf = pipeline("text-classification", model=str(model_dir), device="cpu")
    assert clf("the flight was late")[0]["label"] in {"negative", "neutral", "positive"}
    assert 0 <= merged["test/acc"] <= 1

    run(tmp_path / "adapter", "strategy=lora", "strategy.adapter_only=true", "trainer.max_epochs=1")
    adapter = tmp_path / "adapter" / "model"
    assert json.loads((adapter / "adapter_config.json").read_text())["r"] == 8
    weights = load_file(adapter / "adapter_model.safetensors")
    assert any("lora_A" in k for k in weights) and any("classifier" in k for k in weights)
    assert not any("word_embeddings" in k for k in weights)
