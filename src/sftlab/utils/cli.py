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

from sftlab.utils import secrets, signals
from sftlab.utils.errors import SftlabError

log = logging.getLogger("sftlab")

# Runs of characters between Hydra's list, dict and sweep separators: [a,b] {k:v} choice(a,b).
_ELEMENT = re.compile(r"[^\[\]{}(),]+")

# Hydra writes these before our code runs; a run dir holding nothing else is an empty shell.
HYDRA_ONLY = {".hydra", "train.log", "predict.log"}


def run_or_exit(
    fn: Callable[[Any], Any],
    cfg: Any,
    run_dir: str | None,
    on_stop: Callable[[signals.Interrupted], str] | None = None,
) -> Any:
    """Call ``fn(cfg)``; on a user error print one line, remove the empty run dir, exit 2;
    on SIGTERM / SIGINT print ``on_stop``'s line (default: training's, saying how to resume)
    and exit 143 / 130."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    signals.install()
    try:
        return fn(cfg)
    except SftlabError as e:
        _remove_if_empty(run_dir)
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except signals.Interrupted as stop:
        _remove_if_empty(run_dir)
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
    return f"interrupted by {name}: saved {stop.checkpoint}; resume with: python train.py resume={run_dir}"


def _remove_if_empty(run_dir: str | None) -> None:
    if not run_dir:
        return
    path = Path(run_dir)
    if path.is_dir() and {p.name for p in path.iterdir()} <= HYDRA_ONLY:
        logging.shutdown()
        shutil.rmtree(path, ignore_errors=True)


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
