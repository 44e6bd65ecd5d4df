"""Unpadded training batches: same logits and gradients as padded ones, fewer tokens computed."""

from __future__ import annotations

import pytest
import torch
from transformers import (
    BertConfig,
    BertForSequenceClassification,
)

from sftlab.models.speed import unpad
from tests.helpers.padded import SMALL, padded_references
from tests.helpers.padded import padded as _padded
from tests.helpers.padded import rows as _rows


@pytest.mark.parametrize("pairs", [False, True])
def test_unpadded_logits_and_gradients_equal_the_padded_ones(pairs):
    rows = _rows(pairs)
    labels = torch.tensor([r["labels"] for r in rows])
    for name, model, pad_id, padded, expected in padded_references(pairs):
        batch = unpad.UnpaddedCollator(unpad.enable(model))(rows)
        packed = unpad.logits(model, batch)
        torch.nn.functional.cross_entropy(packed, labels).backward()
        assert torch.allclose(packed, padded, atol=1e-5), name
        for n, p in model.named_parameters():
            if n in expected:
                assert torch.allclose(p.grad, expected[n], atol=1e-5), (name, n)
        # Padded batches still work while unpadding is on (validation, test).
        assert torch.allclose(model(**_padded(rows, pad_id)).logits, padded, atol=1e-6)
        unpad.disable(model)
        assert model.config._attn_implementation != unpad.ATTN


def test_the_packed_row_holds_only_real_tokens():
    rows = _rows()
    batch = unpad.UnpaddedCollator()(rows)
    total = sum(len(r["input_ids"]) for r in rows)
    assert batch["input_ids"].shape == (1, total)  # 46 tokens, not 5 x 17 = 85
    assert batch["position_ids"][0, :7].tolist() == [0, 1, 2, 3, 4, 0, 1]
    assert batch["unpad_mask"].sum() == total


def test_lora_wrapped_models_unpad():
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(**SMALL))
    model = get_peft_model(
        model, LoraConfig(task_type="SEQ_CLS", r=4, target_modules=["query", "value"])
    )
    for module in model.modules():  # LoRA's B starts at zero: make the adapter matter
        if hasattr(module, "lora_B"):
            torch.nn.init.normal_(module.lora_B["default"].weight)
    model.eval()
    rows = _rows()
    padded = model(**_padded(rows)).logits
    assert unpad.supports(model)
    packed = unpad.logits(model, unpad.UnpaddedCollator(unpad.enable(model))(rows))
    assert torch.allclose(packed, padded, atol=1e-5)


def test_decoders_are_not_unpadded():
    from transformers import GPT2Config, GPT2ForSequenceClassification

    gpt = GPT2ForSequenceClassification(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=50))
    assert not unpad.supports(gpt)


def test_training_runs_unpadded_by_default_and_exports_plain_sdpa(tiny_cfg, caplog):
    import json
    from pathlib import Path

    from sftlab import train

    cfg = tiny_cfg("trainer.fast_dev_run=true")
    assert cfg.data.unpad and not cfg.data.group_by_length
    with caplog.at_level("INFO", logger="sftlab.recipes.classifier"):
        train(cfg)
    assert any("training batches are packed" in r.message for r in caplog.records)
    config = json.loads((Path(cfg.output_dir) / "model" / "config.json").read_text())
    assert config.get("_attn_implementation") in (None, "sdpa")
