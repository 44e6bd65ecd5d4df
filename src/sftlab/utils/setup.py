"""Process-wide set-up, run explicitly by the entry points (train.py, predict.py, serve.py and
the tests' conftest): importing sftlab changes no global state (tests/test_no_side_effects.py)."""

from __future__ import annotations

import logging
import os
import secrets
import warnings

from omegaconf import OmegaConf

# Warnings sftlab's runs raise although nothing is wrong, with why.
KNOWN_WARNINGS = (
    # Logged metric values come from torchmetrics' compute(), which already reduced the states
    # over DDP ranks; Lightning's advice to add sync_dist would only average equal numbers again.
    r"It is recommended to use `self.log\('(val|test|train)/",
    # MetricCollection's compute groups update one member per group and share its state; after a
    # reset() the ClasswiseWrapper's inner metric then warns on compute() although its values are
    # right (tests/tasks/test_metrics.py checks them against standalone metrics over several epochs).
    r"The ``compute`` method of metric Multiclass",
    # Spearman keeps every prediction of the epoch: fine at the sizes of a validation split.
    r"Metric `SpearmanCorrcoef` will save all targets",
    # OptimizerFromConfig overrides configure_gradient_clipping, so Lightning warns on every
    # DeepSpeed run that the hook "will not actually clip": DeepSpeed does clip, from
    # trainer.gradient_clip_val, which Lightning writes into its config.
    r"Since DeepSpeed handles gradient clipping internally",
    # Lightning's own tree helper calls a torch API that torch 2.13 deprecated: nothing to change here.
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",
)

# Lightning's advertisements, logged on every Trainer: not news about the run.
ADVERTS = ("💡 Tip:",)
# Lightning says these each time it loads a checkpoint: the best one is loaded for validation and
# again for the test, so the same line came twice. Said once per checkpoint file.
ONCE = (
    "Restoring states from the checkpoint path at",
    "Loaded model weights from the checkpoint at",
)


class _LightningNoise(logging.Filter):
    """Drops ``ADVERTS``, and ``ONCE`` lines said before."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        if message.startswith(ADVERTS):
            return False
        if message.startswith(ONCE):
            if message in self.seen:
                return False
            self.seen.add(message)
        return True


def quiet_known_warnings() -> None:
    """Hide the ``KNOWN_WARNINGS`` (idempotent: an equal filter replaces the old one)."""
    for message in KNOWN_WARNINGS:
        warnings.filterwarnings("ignore", message=message)


def one_line_per_event() -> None:
    """Each library log record printed once, without adverts (idempotent; call it once Lightning
    is imported: its ``__init__`` adds the handler this removes).

    Lightning gives its ``lightning`` logger a console handler of its own (``INFO: ...``) and
    lets records propagate, so under Hydra, whose handler sits on the root logger, every line
    printed twice. Where the root logger has a handler, Lightning's goes: its lines then appear
    once, in Hydra's format, and also in the run's train.log.
    """
    root = logging.getLogger()
    lightning = logging.getLogger("lightning")
    if root.handlers:
        for handler in list(lightning.handlers):
            if type(handler) is logging.StreamHandler:
                lightning.removeHandler(handler)
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _LightningNoise) for f in logger.filters):
            logger.addFilter(_LightningNoise())


def register_resolvers() -> None:
    """``${run_suffix:}`` in hydra.run.dir (conf/train.yaml): two runs started in the same
    second get their own dirs. Cached, so every use within one process gives the same suffix."""
    if not OmegaConf.has_resolver("run_suffix"):
        OmegaConf.register_new_resolver("run_suffix", lambda: secrets.token_hex(3), use_cache=True)


# oneDNN, behind torch's CPU matmuls, caches one primitive per input shape, each holding its own
# reordered copy of the weights (2-5 MB for a MiniLM layer). Packed training batches (data.unpad)
# and length-sorted evaluation batches bring a new shape nearly every step, so the default cache
# of 1,024 primitives grew a Reuters R52 run (720 steps) from 2.4 to 7.6 GB of RSS. 16 keep it
# under ~100 MB; in a 200-step benchmark of MiniLM-sized layers on changing shapes the steps took
# 4% longer (45.3 against 42.7 s) and RSS stayed flat (681 against 1,763 MB and growing).
ONEDNN_CACHE_CAPACITY = "16"


def bound_kernel_cache() -> None:
    """Cap oneDNN's primitive cache (``ONEDNN_PRIMITIVE_CACHE_CAPACITY``, unless set already).
    oneDNN reads it at its first primitive, so this works after ``import torch`` but not after
    a matmul has run in the process."""
    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", ONEDNN_CACHE_CAPACITY)


def setup() -> None:
    """What an entry point sets up before Hydra composes its config."""
    bound_kernel_cache()
    register_resolvers()
    quiet_known_warnings()
