"""DDP on Lightning: samplers that count each eval row once and keep grouped batches per rank, the
child command of a Hydra job, and one real 2-process run (gloo) whose val/test metrics and
confusion matrix equal the 1-process metrics of the same weights."""

from __future__ import annotations

import multiprocessing
import time
from types import SimpleNamespace

import lightning.pytorch as L
import pytest
import torch
from torchmetrics.classification import MulticlassConfusionMatrix
from transformers.trainer_pt_utils import LengthGroupedSampler

from sftlab.data.datamodule import DataConfig, TextDataModule
from sftlab.inference.predictor import load_predictor
from sftlab.models.backbone import load_tokenizer
from sftlab.tasks.metrics import classification_metrics
from sftlab.training.hydra_ddp import config_flags
from sftlab.utils import distributed
from tests.conftest import TINY_CSV, compose_cfg
from tests.helpers.ddp_run import as_tensor, ddp_run, one_process_outputs, stored


def test_eval_sampler_gives_every_row_to_exactly_one_rank():
    rows = list(range(9))
    seen = []
    for rank in range(2):
        trainer = SimpleNamespace(world_size=2, global_rank=rank)
        seen += list(distributed.eval_sampler(rows, trainer))
    assert sorted(seen) == rows  # none twice (Lightning's sampler repeats 0 here), none dropped
    assert distributed.eval_sampler(rows, SimpleNamespace(world_size=1, global_rank=0)) is None


def test_per_rank_batches_keep_length_groups_on_every_rank():
    lengths = [
        int(x) for x in torch.randint(1, 200, (103,), generator=torch.Generator().manual_seed(0))
    ]
    grouped = LengthGroupedSampler(8, lengths=lengths)  # draws from torch's global RNG
    ranks = []
    for rank in range(2):
        torch.manual_seed(100 + rank)  # the ranks' global RNGs differ; the order must not
        sampler = distributed.PerRankBatches(grouped, 8, num_replicas=2, rank=rank, seed=7)
        sampler.set_epoch(3)
        ranks.append(list(sampler))
    assert len(ranks[0]) == len(ranks[1]) == len(sampler) == 56  # 13 batches -> 7 per rank
    # The single-process order under the same seed, cut into its batches of 8.
    with torch.random.fork_rng():
        torch.manual_seed(7 + 3)
        order = list(grouped)
    batches = [order[i : i + 8] for i in range(0, 103, 8)]
    for rank, mine in enumerate(ranks):
        mine_batches = [mine[i : i + 8] for i in range(0, len(mine), 8)]
        expected = batches[rank::2]
        assert mine_batches[: len(expected)][:-1] == expected[:-1]  # whole groups, not shuffled
    assert set(ranks[0]) | set(ranks[1]) == set(range(103))
    assert not set(ranks[0][:48]) & set(ranks[1][:48])  # apart from the padding, disjoint


def test_lightning_keeps_the_datamodules_samplers(tmp_path):
    """With a 2-process DDP trainer attached, Lightning would replace a loader's sampler only
    when it is not a DistributedSampler: ours are, so they stay."""
    # Length-grouped training batches: random ones (the default) Lightning shards itself.
    cfg = compose_cfg(
        [f"data.path={TINY_CSV}", "data=files", "model=tiny_bert", "data.group_by_length=true"]
    )
    from omegaconf import OmegaConf

    data_cfg = DataConfig.from_dict(OmegaConf.to_container(cfg.data, resolve=True))
    dm = TextDataModule(data_cfg, load_tokenizer(cfg.model), seed=1)
    dm.setup("fit")
    trainer = L.Trainer(
        accelerator="cpu", devices=2, strategy="ddp", logger=False, default_root_dir=tmp_path
    )
    dm.trainer = trainer
    connector = trainer._data_connector
    for loader in (dm.train_dataloader(), dm.val_dataloader(), dm.test_dataloader()):
        assert isinstance(loader.sampler, torch.utils.data.DistributedSampler)
        assert not connector._requires_distributed_sampler(loader)


def test_child_keeps_config_flags_only():
    argv = ["-m", "--config-name", "train", "seed=1,2", "-cp=conf", "hydra.verbose=true"]
    assert config_flags(argv) == ["--config-name", "train", "-cp=conf"]


def test_ddp_classification_metrics_equal_one_process(tmp_path):
    """2 gloo processes; 9 validation and 9 test rows fall 5 + 4 on the ranks."""
    run = ddp_run(tmp_path)
    metrics = stored(run)
    labels = load_predictor(run).labels
    for split, prefix in (("validation", "val/"), ("test", "test/")):
        frame, logits = one_process_outputs(run, split)
        target = as_tensor([labels.index(x) for x in frame["label"]])
        logits = as_tensor(logits)
        expected = classification_metrics(labels).clone(prefix=prefix)(logits.argmax(-1), target)
        for key, value in expected.items():
            assert metrics[key] == pytest.approx(float(value), abs=1e-6), key
        if (
            prefix == "val/"
        ):  # synced over the ranks, weighted by rows (metrics.json has no test/loss)
            loss = torch.nn.functional.cross_entropy(logits, target)
            assert metrics["val/loss"] == pytest.approx(float(loss), abs=1e-5)
    confusion = MulticlassConfusionMatrix(len(labels))(logits.argmax(-1), target)
    assert metrics["test/confusion_matrix"] == confusion.tolist()
    assert sum(map(sum, metrics["test/confusion_matrix"])) == 9  # each test row counted once
    # Rank 0 alone writes the run dir: the child logged to the console only.
    assert not list(run.glob("*ddp_process*"))
    assert not (run / "run.lock").exists()  # rank 0 locked it (rank 1 was not refused), released


def _build_slowly(root: str, started) -> None:
    from sftlab.data.cache import DiskCache

    def build():
        started.set()
        time.sleep(1.5)
        return _rows_entry("built by the other process")

    DiskCache(root).get_or_build("k", "rows", build)


def _rows_entry(who: str) -> dict:
    """A cache entry of the kind the data module stores (its rows table and their metadata)."""
    import pandas as pd

    return {"pool": pd.DataFrame({"who": [who]}), "wheres": {}, "class_names": None, "messages": []}


def test_shared_cache_is_built_once_while_others_wait(tmp_path):
    """Two processes want the same cache entry: the second waits for the first's, builds nothing."""
    from sftlab.data.cache import DiskCache

    ctx = multiprocessing.get_context("fork")
    started = ctx.Event()
    other = ctx.Process(target=_build_slowly, args=(str(tmp_path), started))
    other.start()
    assert started.wait(30)
    value = DiskCache(str(tmp_path)).get_or_build("k", "rows", lambda: _rows_entry("built here"))
    other.join(30)
    assert value["pool"]["who"].tolist() == ["built by the other process"]
    assert not [p for p in tmp_path.iterdir() if p.suffix == ".tmp"]  # temp names renamed
