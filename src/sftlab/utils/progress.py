"""Progress over a long loop that is not Lightning's (feature extraction, predict.py): a live bar
in a terminal or a notebook, a plain line now and then anywhere else (a CI log, a file), nothing
when switched off."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")

log = logging.getLogger("sftlab.progress")

# Piped output gets a line at most every this many seconds (and one at the end).
PLAIN_EVERY_S = 30.0


def interactive() -> bool:
    """A terminal or a notebook: somewhere a live bar redraws in place."""
    return sys.stdout.isatty() or _in_notebook()


def _in_notebook() -> bool:
    """Running inside a Jupyter kernel (not merely with ipykernel imported, as nbclient does)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return getattr(shell, "kernel", None) is not None


def progress_bar(
    items: Iterable[T], total: int, desc: str, unit: str = "batch", enabled: bool = True
) -> Iterator[T]:
    """``items`` as they are, with a tqdm bar (interactive), or a line like
    ``features train: 120/480 batches (25%, 31 s)`` every ``PLAIN_EVERY_S`` seconds and at the
    end (piped), or silently (``enabled=False``)."""
    if not enabled or total <= 0:
        yield from items
        return
    if interactive():
        yield from tqdm(items, total=total, desc=desc, unit=unit, leave=False)
        return
    started = last = time.perf_counter()
    for done, item in enumerate(items, 1):
        yield item
        now = time.perf_counter()
        if now - last >= PLAIN_EVERY_S or done == total:
            last = now
            log.info(
                "%s: %d/%d %s (%d%%, %.0f s)",
                desc,
                done,
                total,
                f"{unit}es" if unit.endswith("ch") else f"{unit}s",
                100 * done // total,
                now - started,
            )
