"""Resuming a run: where its checkpoints are, which run ``resume=auto`` continues, its state file.

Every run dir holds ``run.json`` (the config's fingerprint, the status ``running`` /
``interrupted`` / ``failed`` / ``finished``, the W&B run id) and ``checkpoints/last.ckpt``
(saved at every epoch end, every ``checkpoint.every_n_steps`` steps and on SIGTERM / SIGINT).

- ``resume=<run dir>`` continues that run in its own dir, with its own saved config.
- ``resume=auto`` continues the newest unfinished run with the same config: first the run dir
  itself (a requeued SLURM job that kept its ``output_dir``), else the newest under ``runs_dir``.
  "The same config" means equal after resolving, ignoring the keys in ``NOT_FINGERPRINTED``
  (where the run writes, how it shows progress, where the data cache lives).

The run dir a plan picks is locked for the run (``run_lock``): ``resume=auto`` skips a run
another process is still training, ``resume=<dir>`` refuses it, and a new run is refused in a
dir that is in use. Under DDP only rank 0 takes the lock; its other ranks only check it is theirs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import DictConfig, OmegaConf, open_dict

from sftlab.training import run_lock
from sftlab.training.run_lock import RunInUse, RunLock
from sftlab.utils.distributed import launched_as_rank_zero
from sftlab.utils.errors import SftlabError
from sftlab.utils.files import overwrite_in_place, reading, write_json
from sftlab.utils.secrets import MASK

log = logging.getLogger(__name__)

RUN_FILE = "run.json"
LAST = Path("checkpoints") / "last.ckpt"
BEST = Path("checkpoints") / "best.ckpt"
# Keys that say where and how a run shows its work, not what it computes.
NOT_FINGERPRINTED = (
    "output_dir",
    "resume",
    "runs_dir",
    "logger",
    "test",
    "export",
    "push_to_hub",
    "license",
    "trainer.enable_progress_bar",
    "trainer.default_root_dir",
    "data.cache_dir",
    "data.num_workers",
)


@dataclass
class RunPlan:
    """Where this run writes and what it continues from."""

    cfg: DictConfig
    """The config to run: the current one, or the resumed run's own."""
    out: Path
    ckpt: Path | None = None
    """``last.ckpt`` to continue from; None = a fresh start."""
    state: dict[str, Any] = field(default_factory=dict)
    """``run.json`` of this run (kept across resumes: the W&B run id, the fingerprint)."""
    csv_history: list[tuple[Path, Path, Any]] = field(default_factory=list)
    """(set-aside copy, metrics.csv, its CSVLogger) of a resumed run (``lifecycle.keep_csv_history``)."""
    lock: RunLock | None = None
    """This process's lock on ``out`` (rank 0; None on DDP's other ranks)."""

    def save(self, **changes: Any) -> None:
        self.state.update(changes, updated=time.strftime("%Y-%m-%dT%H:%M:%S"))
        self.out.mkdir(parents=True, exist_ok=True)
        write_json(self.out / RUN_FILE, self.state)

    def mark(self, status: str) -> None:
        """``save(status=...)`` when a run ends badly, best effort: on a full disk run.json is
        rewritten in place; a failure is logged, never raised over the run's own error."""
        try:
            self.save(status=status)
        except OSError:
            try:
                overwrite_in_place(
                    self.out / RUN_FILE, json.dumps(self.state, default=str, separators=(",", ":"))
                )
            except OSError as e:
                log.warning("could not record status=%s in %s: %s", status, self.out / RUN_FILE, e)

    def release(self) -> None:
        """Unlock ``out`` (the end of the run, an error or a signal); idempotent."""
        if self.lock is not None:
            self.lock.release()
            self.lock = None


def fingerprint(cfg: DictConfig) -> str:
    """A hash of the resolved config without the keys that do not change the result."""
    cfg = cfg.copy()
    with open_dict(cfg):
        cfg.output_dir = "<run>"  # values interpolated from it (save dirs) stop differing too
    values = OmegaConf.to_container(cfg, resolve=True)
    for key in NOT_FINGERPRINTED:
        *parents, leaf = key.split(".")
        node = values
        for p in parents:
            node = node.get(p) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(leaf, None)
    text = json.dumps(values, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def read_state(run_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((run_dir / RUN_FILE).read_text())
    except (OSError, ValueError):
        return {}


def plan(cfg: DictConfig) -> RunPlan:
    """The run dir, the checkpoint to continue from and the config, for ``cfg.resume``; the run
    dir is locked until ``RunPlan.release()``."""
    resume = cfg.get("resume")
    out = Path(cfg.output_dir)
    if resume in (None, "", False):
        return _fresh(cfg, out)
    if str(resume) == "auto":
        for found in _find_unfinished(cfg, out):
            try:
                return _continue(cfg, found, out)
            except RunInUse as busy:
                log.warning("resume=auto: skipping %s: %s", found, busy)
        log.info("resume=auto: no unfinished run with this config: starting %s", out)
        return _fresh(cfg, out)
    run_dir = Path(str(resume)).expanduser()
    try:
        return _continue(cfg, run_dir, out)
    except RunInUse as busy:
        raise SftlabError(
            f"resume={run_dir}: that run is {busy}: let it finish or stop it, then resume it"
        ) from None


def _lock(run_dir: Path, out: Path) -> RunLock | None:
    """Rank 0 (or the only process) locks ``run_dir`` for this run. DDP's other ranks take no
    lock: they only check that a live lock on ``run_dir`` is their rank 0's (``RunInUse`` if not)."""
    if launched_as_rank_zero():
        return run_lock.acquire(run_dir, owner=out)
    busy = run_lock.holder(run_dir)
    if busy is not None and not run_lock.is_owner(busy, out):
        raise RunInUse(run_dir, busy)
    return None


def _fresh(cfg: DictConfig, out: Path) -> RunPlan:
    try:
        lock = _lock(out, out)
    except RunInUse as busy:
        raise SftlabError(
            f"the run dir {out} is {busy}: choose another dir with hydra.run.dir=..."
        ) from None
    if lock is not None and (results := _results(out)):  # rank 0 checks for every rank
        lock.release()
        if (out / LAST).is_file() and read_state(out).get("status") != "finished":
            how = f"resume it with resume={out}, or choose another dir with hydra.run.dir=..."
        else:
            how = "choose another dir with hydra.run.dir=..."
        raise SftlabError(
            f"the run dir {out} already holds a run ({', '.join(results)}); a new run would "
            f"overwrite it: {how}"
        )
    state = {
        "status": "starting",
        "fingerprint": fingerprint(cfg),
        "wandb_id": uuid.uuid4().hex[:8],
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    return RunPlan(cfg, out, None, state, lock=lock)


def _results(out: Path) -> list[str]:
    """What an earlier run left in ``out`` that a new run there would overwrite."""
    found = sorted(out.glob("checkpoints/*.ckpt"))
    found += [
        out / name for name in ("metrics.json", "csv/metrics.csv", "model") if (out / name).exists()
    ]
    return [str(p.relative_to(out)) for p in found]


def _continue(cfg: DictConfig, run_dir: Path, out: Path) -> RunPlan:
    if not run_dir.is_dir():
        raise SftlabError(
            f"resume={run_dir}: no such run dir: pass a run dir (outputs/<date>/<time>)"
        )
    last = run_dir / LAST
    if not last.is_file():
        raise SftlabError(
            f"resume={run_dir}: no {LAST} in it (the run stopped before its first checkpoint, "
            f"or was trained before resuming existed): start a new run without resume="
        )
    saved = run_dir / "config.yaml"
    if not saved.is_file():
        raise SftlabError(
            f"resume={run_dir}: no config.yaml in it: start a new run without resume="
        )
    state = read_state(run_dir)
    if state.get("status") == "finished":
        raise SftlabError(
            f"resume={run_dir}: that run finished; its results are in {run_dir / 'metrics.json'}: "
            f"train longer in a new run (trainer.max_epochs=...) without resume="
        )
    # Lightning reads it only once the data and the model are loaded: check it opens now.
    read_checkpoint(
        last,
        f"restore it, or start a new run without resume= ({run_dir} is left as it is)",
        mmap=True,
    )
    own = _own_config(cfg, saved, run_dir)
    lock = _lock(run_dir, out)  # last: every check above fails without a lock to release
    state.setdefault("fingerprint", fingerprint(own))
    state.setdefault("wandb_id", uuid.uuid4().hex[:8])
    state["resumed"] = state.get("resumed", 0) + 1
    log.info("resuming %s from %s", run_dir, last)
    return RunPlan(own, run_dir, last, state, lock=lock)


def _own_config(cfg: DictConfig, saved: Path, run_dir: Path) -> DictConfig:
    """The resumed run's saved config; secrets (masked there) and ``resume`` from the current one."""
    try:
        own = OmegaConf.load(saved)
    except Exception as e:  # noqa: BLE001 - a hand-edited or truncated file
        raise SftlabError(
            f"resume={run_dir}: cannot read {saved} ({str(e).splitlines()[0]})"
        ) from None
    _unmask(own, cfg)
    with open_dict(own):
        own.output_dir = str(run_dir)
        own.resume = cfg.get("resume")
    current, theirs = fingerprint(cfg), fingerprint(own)
    if current != theirs:
        log.warning(
            "resume=%s: continuing with that run's own config (%s), not this command's overrides",
            run_dir,
            saved,
        )
    return own


def _unmask(own: DictConfig, cfg: Any) -> None:
    for key in list(own.keys()):
        mine = own[key]
        other = cfg.get(key) if isinstance(cfg, DictConfig) else None
        if isinstance(mine, DictConfig):
            _unmask(mine, other)
        elif mine == MASK and other is not None:
            own[key] = other


def _find_unfinished(cfg: DictConfig, out: Path) -> list[Path]:
    """The unfinished runs ``resume=auto`` may continue, best first: the run dir itself when it
    holds one, then those with the same fingerprint under ``runs_dir``, newest first."""
    found = []
    if (out / LAST).is_file() and read_state(out).get("status") != "finished":
        found.append(out)
    root = Path(str(cfg.get("runs_dir") or "outputs")).expanduser()
    if not root.is_dir():
        return found
    wanted = fingerprint(cfg)
    candidates = []
    for state_file in root.rglob(RUN_FILE):
        run_dir = state_file.parent
        state = read_state(run_dir)
        last = run_dir / LAST
        if (
            state.get("fingerprint") == wanted
            and state.get("status") != "finished"
            and last.is_file()
            and run_dir.resolve() != out.resolve()
        ):
            candidates.append((last.stat().st_mtime, run_dir))
    return found + [run_dir for _, run_dir in sorted(candidates, reverse=True)]


def checkpoint_callbacks(
    out: Path, monitor: str | None, mode: str, every_n_steps: int | None
) -> tuple[ModelCheckpoint, list[ModelCheckpoint]]:
    """(the best-checkpoint callback, all checkpoint callbacks): ``best.ckpt`` by ``monitor``;
    ``last.ckpt`` at every epoch end and every ``every_n_steps`` training steps (but for a step
    that validation follows: ``StepCheckpoint``).

    ``last.ckpt`` has its own callback: Lightning 2.6's ``save_last`` writes it only when the
    best checkpoint changed. Lightning calls checkpoint callbacks in this order, so ``last.ckpt``
    holds the best callback's state after this epoch's validation.
    """
    best = ModelCheckpoint(
        dirpath=out / "checkpoints",
        filename="best",
        monitor=monitor,
        mode=mode,
        save_top_k=1,
        enable_version_counter=False,
    )
    last = [
        kind(
            dirpath=out / "checkpoints",
            filename=LAST.stem,
            monitor=None,
            save_top_k=1,
            enable_version_counter=False,
            **trigger,
        )
        for kind, trigger in (
            (ModelCheckpoint, {"every_n_epochs": 1}),
            (StepCheckpoint, {"every_n_train_steps": every_n_steps}),
        )
        if None not in trigger.values()
    ]
    return best, [best, *last]


def read_checkpoint(ckpt: str | Path, fix: str, mmap: bool = False) -> dict[str, Any]:
    """A Lightning checkpoint's contents, read without unpickling code (``weights_only``);
    a truncated, foreign or unreadable file is one line naming it and ``fix``. ``mmap``: the
    tensors stay on disk until used (cheap to open a large one)."""
    with reading(
        ckpt, fix, what="the checkpoint", corrupt=(RuntimeError, pickle.UnpicklingError, ValueError)
    ):
        state = torch.load(ckpt, map_location="cpu", weights_only=True, mmap=mmap)
    if not isinstance(state, dict):
        raise SftlabError(f"{ckpt} is not a Lightning checkpoint: {fix}")
    return state


def validation_follows(trainer: Any) -> bool:
    """Whether Lightning validates right after the training batch that just ended.

    A checkpoint saved between such a batch and its validation is a resume point Lightning gets
    wrong: it resumes past the validation without running it, so that epoch's score never
    reaches the best checkpoint or early stopping. Checkpoints wait for the one saved after
    the validation (``last.ckpt`` is saved after every validation and at every epoch end)."""
    loop = trainer.fit_loop.epoch_loop
    return bool(loop._should_check_val_fx(trainer.fit_loop._data_fetcher))


class StepCheckpoint(ModelCheckpoint):
    """``last.ckpt`` every ``every_n_train_steps`` steps, except at a step validation follows:
    the checkpoint saved after that validation takes its place."""

    def on_train_batch_end(self, trainer: Any, *args: Any, **kwargs: Any) -> None:
        if not validation_follows(trainer):
            super().on_train_batch_end(trainer, *args, **kwargs)


def load_weights(module: Any, ckpt: str | Path) -> None:
    """The module's weights from a checkpoint."""
    fix = "pass a run's checkpoints/best.ckpt"
    state = read_checkpoint(ckpt, fix)
    if "state_dict" not in state:
        raise SftlabError(f"{ckpt} is not a Lightning checkpoint (no state_dict): {fix}")
    module.load_state_dict(state["state_dict"])
