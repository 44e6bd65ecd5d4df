"""What the thin entry points share: one-line errors, clean stops, no half-written run dir."""

from __future__ import annotations

import logging
import os
import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from sftlab.utils import secrets, signals
from sftlab.utils.errors import SftlabError

log = logging.getLogger("sftlab")

# Runs of characters between Hydra's list, dict and sweep separators: [a,b] {k:v} choice(a,b).
_ELEMENT = re.compile(r"[^\[\]{}(),]+")

# Hydra writes these before our code runs; a run dir holding nothing else is an empty shell.
HYDRA_ONLY = {".hydra", "train.log", "predict.log"}

# What each run dir held before Hydra wrote into it (``NoteRunDir``), by absolute path: None =
# it did not exist; else {".": its entries, ".hydra": the entries of its .hydra/}.
_BEFORE: dict[str, dict[str, frozenset[str]] | None] = {}


def run_or_exit(
    fn: Callable[[Any], Any],
    cfg: Any,
    run_dir: str | None,
    on_stop: Callable[[signals.Interrupted], str] | None = None,
) -> Any:
    """Call ``fn(cfg)``; on a user error print one line, remove what the run created in an
    empty run dir, exit 2; on SIGTERM / SIGINT print ``on_stop``'s line (default: training's,
    saying how to resume) and exit 143 / 130."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    signals.install()
    try:
        return fn(cfg)
    except SftlabError as e:
        remove_created(run_dir)
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except signals.Interrupted as stop:
        remove_created(run_dir)
        print((on_stop or interrupted_line)(stop), file=sys.stderr)
        sys.exit(stop.exit_code)


def stopped_line(command: str, outcome: str) -> Callable[[signals.Interrupted], str]:
    """``on_stop`` for a command that trains nothing: no checkpoint, nothing to resume."""

    def line(stop: signals.Interrupted) -> str:
        return f"{command} stopped by {signals.signal.Signals(stop.signum).name}: {outcome}"

    return line


def interrupted_line(stop: signals.Interrupted) -> str:
    """One line: what stopped the run and the command that continues it."""
    name = signals.signal.Signals(stop.signum).name
    if stop.checkpoint is None:
        return f"interrupted by {name} before the first checkpoint: nothing to resume, start the run again"
    run_dir = Path(stop.checkpoint).parent.parent
    if stop.trained:
        return (
            f"interrupted by {name}: training finished; the report was not written: rerun with "
            f"python train.py resume={run_dir} (it tests and exports without training again)"
        )
    return f"interrupted by {name}: saved {stop.checkpoint}; resume with: python train.py resume={run_dir}"


class NoteRunDir(Callback):
    """Notes what ``hydra.run.dir`` holds before Hydra writes into it (a Hydra callback, in
    conf/train.yaml), so that ``remove_created`` removes only what this run created there, and
    never a folder the user pointed ``hydra.run.dir`` at, or its files."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:  # resolved as Hydra will: its ${now:} and ${run_suffix:} are cached in ``config``
            run_dir = Path(os.path.abspath(str(OmegaConf.select(config, "hydra.run.dir"))))
        except Exception:  # noqa: BLE001 - e.g. ${hydra:...} before Hydra set it: no note, nothing removed
            return
        if not run_dir.is_dir():
            _BEFORE[str(run_dir)] = None
            return
        hydra_dir = run_dir / ".hydra"
        _BEFORE[str(run_dir)] = {
            ".": frozenset(p.name for p in run_dir.iterdir()),
            ".hydra": frozenset(p.name for p in hydra_dir.iterdir())
            if hydra_dir.is_dir()
            else frozenset(),
        }


def remove_created(run_dir: str | Path | None) -> None:
    """Remove what this run created in ``run_dir`` when it holds nothing but Hydra's own files
    (``HYDRA_ONLY``): a run that failed its checks, the dir Hydra made for a resumed run (which
    works in its own). What was there before (``NoteRunDir``) stays; without a note, all stays."""
    if not run_dir:
        return
    path = Path(os.path.abspath(run_dir))
    if str(path) not in _BEFORE or not path.is_dir():
        return
    names = {p.name for p in path.iterdir()}
    if not names <= HYDRA_ONLY:
        return
    _close_logs_in(path)
    before = _BEFORE[str(path)]
    if before is None:
        shutil.rmtree(path, ignore_errors=True)
        return
    for name in names - before["."]:
        _remove(path / name)
    if ".hydra" in before["."] and (path / ".hydra").is_dir():
        for entry in (path / ".hydra").iterdir():
            if entry.name not in before[".hydra"]:
                _remove(entry)


def _close_logs_in(path: Path) -> None:
    """Close and drop the log handlers writing into ``path`` (Hydra's train.log)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        filename = getattr(handler, "baseFilename", None)
        if filename and Path(filename).parent == path:
            root.removeHandler(handler)
            handler.close()


def _remove(entry: Path) -> None:
    if entry.is_dir() and not entry.is_symlink():
        shutil.rmtree(entry, ignore_errors=True)
    else:
        entry.unlink(missing_ok=True)


def quote_non_ascii(argv: list[str]) -> list[str]:
    """Quote non-ASCII override values (``data.text_column=评论`` -> ``data.text_column='评论'``).

    Hydra's override grammar takes only ASCII in unquoted values and rejects ``评论`` with a
    lexer error; quoted, any text is fine. A value holding a quote is left as the user wrote it.
    List and sweep values are quoted per element: ``data.labels=[正面,负面]``.
    """
    out = []
    for arg in argv:
        key, eq, value = arg.partition("=")
        if arg.startswith("-") or not eq or value.isascii() or "'" in value or '"' in value:
            out.append(arg)
            continue
        quoted = _ELEMENT.sub(
            lambda m: f"'{m.group()}'" if not m.group().isascii() else m.group(), value
        )
        out.append(f"{key}={quoted}")
    return out


def hide_secrets(argv: list[str]) -> list[str]:
    """``argv`` with the secret overrides' values moved into the environment (see
    ``secrets.to_environment``); one line and exit 2 for a secret it cannot move."""
    try:
        return secrets.to_environment(argv, os.environ)
    except SftlabError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
