"""CUDA graphs for the training step of BERT-family classifiers on one GPU (``model.cuda_graphs``).

On a GPU a small encoder's training step is bound by the host, not by arithmetic: MiniLM at batch
32 issues about a thousand kernels per step and the GPU waits on Python to launch each one. A CUDA
graph records the forward and the backward once and replays each as a single launch.

A graph replays fixed shapes, so training batches are padded to a multiple of ``bucket(...)``
tokens (32 for max_length 128): a handful of shapes per run, one graph each, captured the first
time the shape comes (``torch.cuda.make_graphed_callables``). The batches are the same random
batches; the logits equal the padded forward's (tests/models/test_cuda_graphs.py). A batch of another
size (the last one of an epoch) runs eagerly, as does validation, test and predict.

The attention mask goes to the encoder in its 4-D form, which transformers passes to SDPA as it
is: the 2-D form is checked on the host (``mask.all()``), a sync a graph cannot hold.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from sftlab.models.speed import unpad
from sftlab.models.split import split_model
from sftlab.utils import hardware
from sftlab.utils.errors import SftlabError

log = logging.getLogger(__name__)


def bucket(max_length: int) -> int:
    """Training batches are padded to a multiple of this: 32 up to max_length 256, then
    max_length / 8 (rounded up to a multiple of 8), so that a run has at most 8 shapes."""
    return max(32, 8 * math.ceil(max_length / 64))


def decide(cfg: Any, model: nn.Module) -> bool:
    """Whether training runs as CUDA graphs, from ``model.cuda_graphs`` (auto, true, false) and
    the rest of the run's config: auto turns graphs on wherever they can run; true where they
    cannot is a one-line error naming what stands in the way. Decided before any file is
    written."""
    setting = cfg.model.get("cuda_graphs", "auto")
    if setting != "auto" and not isinstance(setting, bool):
        raise SftlabError(f"model.cuda_graphs must be auto, true or false, got {setting!r}")
    if setting is False:
        return False
    trainer = cfg.trainer
    accelerator = hardware.resolve_accelerator(trainer.get("accelerator", "auto"))
    blockers = {  # the setting that would let graphs run -> whether the run lacks it
        "trainer.accelerator=gpu (a CUDA device)": accelerator != "cuda",
        "trainer.devices=1": trainer.get("devices", 1) not in (1, "1"),
        "trainer.num_nodes=1": trainer.get("num_nodes", 1) != 1,
        "trainer.strategy=auto (one device)": trainer.get("strategy", "auto") not in (None, "auto"),
        "trainer.accumulate_grad_batches=1": trainer.get("accumulate_grad_batches", 1) != 1,
        "model.gradient_checkpointing=false": bool(cfg.model.get("gradient_checkpointing")),
        "model.compile=false": bool(cfg.model.get("compile")),
        "a strategy without cache_features": bool(cfg.strategy.get("cache_features")),
        "a BERT, RoBERTa or XLM-R encoder": not unpad.supports(model),
        # The 4-D boolean mask means "attend" to SDPA; eager attention would add it as a bias.
        "the sdpa attention implementation": unpad.supports(model)
        and unpad.encoder_of(model)[0].config._attn_implementation != "sdpa",
    }
    missing = [key for key, blocked in blockers.items() if blocked]
    if missing and setting is True:
        raise SftlabError(
            f"model.cuda_graphs=true needs {', '.join(missing)}; set model.cuda_graphs=auto"
        )
    return not missing


class StaticCollator:
    """Padded training batches whose length is a multiple of ``multiple`` (a few shapes), and
    never longer than ``max_length`` (the position table may end there)."""

    def __init__(self, tokenizer: Any, multiple: int, max_length: int):
        self.tokenizer, self.multiple, self.max_length = tokenizer, multiple, max_length

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        longest = max(len(row["input_ids"]) for row in rows)
        length = min(self.multiple * math.ceil(longest / self.multiple), self.max_length)
        length = max(length, longest)  # rows are already cut to max_length; never truncate
        return self.tokenizer.pad(
            rows, padding="max_length", max_length=length, return_tensors="pt"
        )


def static_logits(model: nn.Module, ids: torch.Tensor, mask: torch.Tensor, *types) -> torch.Tensor:
    """The classifier's logits for a padded batch, with no host sync (a graph can hold it)."""

    encoder, pooling, _ = unpad.encoder_of(model)
    inputs = {"input_ids": ids, "attention_mask": mask[:, None, None, :].bool()}
    if types:
        inputs["token_type_ids"] = types[0]
    hidden = encoder(**inputs).last_hidden_state  # (B, L, H)
    if pooling == "cls":
        features = hidden[:, 0]
    else:  # the mean over each text's tokens
        weights = mask.to(hidden.dtype)[:, :, None]
        features = (hidden * weights).sum(dim=1) / weights.sum(dim=1)
    _, parts, head = split_model(unpad.unwrap(model))
    return head(parts, features)


class _Step(nn.Module):
    """What one graph holds: the batch tensors in, the logits out. Its parameters are the
    model's, so the backward graph produces their gradients."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, ids: torch.Tensor, mask: torch.Tensor, *types: torch.Tensor) -> torch.Tensor:
        return static_logits(self.model, ids, mask, *types)


class GraphedTraining:
    """Training logits through one CUDA graph per batch shape, captured on first sight.

    ``capture`` is ``torch.cuda.make_graphed_callables``'s signature (tests pass a stand-in).
    All graphs share one memory pool: only one runs at a time and each step's forward and
    backward replay in pairs, so their temporaries may overlap. Each keeps its own gradient
    buffers (4 bytes per trainable parameter per shape).
    """

    def __init__(
        self, model: nn.Module, batch_size: int, capture: Callable | None = None, warmup: int = 2
    ):
        self.model, self.batch_size, self.warmup = model, batch_size, warmup
        self.capture = capture or torch.cuda.make_graphed_callables
        self.graphs: dict[tuple, nn.Module | None] = {}  # None: that shape runs eagerly
        self._params = list(model.parameters())
        self._trainable = self._which_train()
        self.captured = 0
        self.eager_steps = 0
        self.replayed_steps = 0
        self.capture_seconds = 0.0
        self._pool = None

    def __call__(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        args = [batch["input_ids"], batch["attention_mask"]]
        if "token_type_ids" in batch:
            args.append(batch["token_type_ids"])
        key = tuple(tuple(a.shape) for a in args)
        if len(args[0]) != self.batch_size:  # the epoch's last, smaller batch: one eager step
            self.eager_steps += 1
            return static_logits(self.model, *args)
        trainable = self._which_train()
        if trainable != self._trainable:  # e.g. strategy=gradual unfroze a layer
            # A graph's backward computes the gradients of what trained when it was captured.
            log.info("model.cuda_graphs: the trainable parameters changed, capturing again")
            self.release()
            self._trainable = trainable
        if key not in self.graphs:
            self.graphs[key] = self._capture(key, args)
        graph = self.graphs[key]
        if graph is None:  # this shape did not fit as a graph: it runs eagerly
            self.eager_steps += 1
            return static_logits(self.model, *args)
        self.replayed_steps += 1
        return graph(*args)

    def _capture(self, key: tuple, args: list[torch.Tensor]) -> nn.Module | None:
        """The graphed step for this shape, or None when it does not fit in GPU memory."""
        import time

        started = time.perf_counter()
        kwargs: dict[str, Any] = {"num_warmup_iters": self.warmup}
        if self.capture is torch.cuda.make_graphed_callables:
            if self._pool is None:
                self._pool = torch.cuda.graph_pool_handle()
            kwargs["pool"] = self._pool
            # A parameter the loss does not reach (a pooled model's unused BERT pooler) keeps
            # no gradient, as in the eager step, instead of failing the capture.
            kwargs["allow_unused_input"] = True
        try:
            with warnings.catch_warnings():
                # The warm-up runs on a side stream, as make_graphed_callables does by design.
                warnings.filterwarnings("ignore", message="The AccumulateGrad node's stream")
                graph = self.capture(_Step(self.model), tuple(a.clone() for a in args), **kwargs)
        except torch.OutOfMemoryError:
            # Each shape keeps its own gradient buffers: when one more set does not fit, that
            # shape trains eagerly (as fast as without graphs) instead of failing the run.
            log.warning(
                "model.cuda_graphs: no GPU memory left to capture batch shape %s: it runs "
                "eagerly (model.cuda_graphs=false turns the graphs off)",
                key[0],
            )
            self._free()
            return None
        self.captured += 1
        seconds = time.perf_counter() - started
        self.capture_seconds += seconds
        log.info("model.cuda_graphs: captured batch shape %s in %.2f s", key[0], seconds)
        return graph

    def _which_train(self) -> tuple[bool, ...]:
        return tuple(p.requires_grad for p in self._params)

    def release(self) -> None:
        """Free the graphs and their memory pool (after fit: evaluation runs eagerly)."""
        self.graphs.clear()
        self._pool = None
        self._free()

    @staticmethod
    def _free() -> None:
        import gc

        gc.collect()  # a graphed callable is a reference cycle: only a collection frees it
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.empty_cache()

    def facts(self) -> dict[str, Any]:
        """For metrics.json: shapes captured, steps replayed / eager, capture time."""
        return {
            "cuda_graphs_shapes": self.captured,
            "cuda_graphs_replayed_steps": self.replayed_steps,
            "cuda_graphs_eager_steps": self.eager_steps,
            "cuda_graphs_capture_seconds": round(self.capture_seconds, 2),
        }
