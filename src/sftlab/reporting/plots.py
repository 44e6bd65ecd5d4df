"""Matplotlib figures for sweep summaries and run reports.

Figures are made with matplotlib's object API (``Figure``, saved by the Agg renderer): no
backend is selected and pyplot's global state is never touched, so importing or calling this
module changes nothing for a notebook or an application that plots on its own.
"""

from __future__ import annotations

import functools
import logging
import math
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import matplotlib
from matplotlib import font_manager
from matplotlib.figure import Figure

from sftlab.data.cleaning import CJK

log = logging.getLogger(__name__)

# Fonts with Chinese glyphs, tried in order (Linux packages, then Windows and macOS fonts).
CJK_FONTS = (
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "Microsoft YaHei",
    "SimHei",
    "PingFang SC",
    "Heiti SC",
    "Arial Unicode MS",
)


@functools.cache
def cjk_font() -> str | None:
    """The first installed CJK font; matplotlib falls back to it glyph by glyph (>= 3.6)."""
    installed = {f.name for f in font_manager.fontManager.ttflist}
    return next((name for name in CJK_FONTS if name in installed), None)


@contextmanager
def _figure(path: Path, **kwargs: Any) -> Iterator[Figure]:
    """A figure to draw on, saved to ``path`` when the block ends; the CJK font (if any) is a
    fallback of sftlab's figures only."""
    found = cjk_font()
    fonts = {"font.sans-serif": [*matplotlib.rcParams["font.sans-serif"], found]} if found else {}
    with matplotlib.rc_context(fonts):
        fig = Figure(**kwargs)
        yield fig
        fig.tight_layout()
        fig.savefig(path, dpi=110)


if TYPE_CHECKING:
    import pandas as pd


class Group(Protocol):
    """What a figure reads from one configuration's runs (``sftlab.reporting.summary.Group`` has it);
    a protocol, so that this module needs nothing from the summary that calls it."""

    config: str

    def mean_std(self, metric: str) -> tuple[float, float, int]: ...

    def values(self, metric: str) -> Sequence[float]: ...


def metric_by_config(groups: list[Group], metric: str, path: Path) -> Path:
    """Horizontal bars: mean of ``metric`` per configuration, error bars = std over seeds, dots = runs."""
    rows = [(g.config, *g.mean_std(metric), g.values(metric)) for g in groups]
    rows = [r for r in rows if r[3] > 0]
    with _figure(path, figsize=(7, 0.5 * len(rows) + 1.5)) as fig:
        ax = fig.subplots()
        y = list(range(len(rows)))
        ax.barh(
            y,
            [r[1] for r in rows],
            xerr=[r[2] for r in rows],
            color="#4c72b0",
            alpha=0.8,
            capsize=4,
        )
        for i, r in enumerate(rows):
            ax.scatter(r[4], [i] * len(r[4]), color="black", s=12, zorder=3)
        ax.set_yticks(y, [f"{_short(r[0])} (n={r[3]})" for r in rows], fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel(f"{metric} (mean +- std over seeds)")
        ax.set_title(f"{metric} per configuration")
    return path


def _short(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def learning_curve(
    curve: dict[str, list[tuple[float, float, float, int]]], metric: str, path: Path
) -> Path:
    """``metric`` against the number of training rows, one line per other setting, band = +- std."""
    with _figure(path, figsize=(7, 4.5)) as fig:
        ax = fig.subplots()
        for label, points in curve.items():
            points = [p for p in points if not math.isnan(p[1])]
            if not points:
                continue
            xs, means, stds, _ = zip(*points, strict=True)
            ax.plot(xs, means, marker="o", label=_short(label))
            ax.fill_between(
                xs,
                [m - s for m, s in zip(means, stds, strict=True)],
                [m + s for m, s in zip(means, stds, strict=True)],
                alpha=0.2,
            )
        ax.set_xscale("log")
        sizes = sorted({p[0] for points in curve.values() for p in points if not math.isnan(p[0])})
        ax.set_xticks(sizes, [f"{x:,.0f}" for x in sizes])  # the measured sizes, not powers of ten
        ax.minorticks_off()
        ax.set_xlabel("training examples")
        ax.set_ylabel(f"{metric} (mean +- std over seeds)")
        ax.set_title("learning curve over data size")
        ax.grid(True, alpha=0.3)
        if len(curve) > 1 or next(iter(curve)) != "defaults":
            ax.legend(fontsize=8)
    return path


def training_curves(frame: pd.DataFrame, monitor: str, path: Path) -> Path | None:
    """Train and validation loss per epoch (left) and the validation metric per epoch (right)."""
    if "epoch" not in frame:
        return None
    by_epoch = frame.groupby("epoch").last()
    with _figure(path, figsize=(10, 4)) as fig:
        left, right = fig.subplots(1, 2)
        for key, label in (("train/loss_epoch", "train loss"), ("val/loss", "validation loss")):
            if key in by_epoch and by_epoch[key].notna().any():
                series = by_epoch[key].dropna()
                left.plot(series.index + 1, series.values, marker="o", label=label)
        if "train/loss_step" in frame and "step" in frame:
            steps = frame.dropna(subset=["train/loss_step"])
            per_epoch = steps.groupby("epoch")["step"].max() + 1
            if len(steps) > 1 and len(per_epoch):
                x = (
                    steps["step"] / per_epoch.max()
                    if len(per_epoch) == 1
                    else _step_to_epoch(steps, per_epoch)
                )
                left.plot(x, steps["train/loss_step"], alpha=0.3, label="train loss (steps)")
        left.set_xlabel("epoch")
        left.set_ylabel("loss")
        left.set_title("loss")
        left.legend(fontsize=8)
        left.grid(True, alpha=0.3)
        if monitor in by_epoch and by_epoch[monitor].notna().any():
            series = by_epoch[monitor].dropna()
            right.plot(series.index + 1, series.values, marker="o", color="#55a868")
        right.set_xlabel("epoch")
        right.set_ylabel(monitor)
        right.set_title(f"validation metric ({monitor})")
        right.grid(True, alpha=0.3)
    return path


def _step_to_epoch(steps: pd.DataFrame, per_epoch: pd.Series) -> pd.Series:
    """Fractional epochs for logged steps (epoch e covers steps after the previous epoch's last)."""
    starts = per_epoch.shift(1, fill_value=0)
    lengths = (per_epoch - starts).clip(lower=1)
    return steps["epoch"] + (steps["step"] - steps["epoch"].map(starts)) / steps["epoch"].map(
        lengths
    )


def _has_cjk(texts: list[str]) -> bool:
    return any(CJK.search(t) for t in texts)


def confusion_matrix(matrix: list[list[float]], labels: list[str], path: Path) -> Path:
    """Counts, rows = true labels, columns = predicted; each cell also shows its row share."""
    if cjk_font() is None and _has_cjk(labels):
        # One line instead of matplotlib's warning per missing glyph.
        log.warning(
            "no CJK font installed: the Chinese label names in %s show as boxes (the report's "
            "tables keep them); install one, e.g. apt-get install fonts-noto-cjk",
            path.name,
        )
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Glyph .* missing from font")
            return _confusion_matrix(matrix, labels, path)
    return _confusion_matrix(matrix, labels, path)


# Past this many labels the cells carry no numbers (the table in report.md has them) and the
# figure stops growing: its pixels, and the memory and time to draw them, stay bounded however
# many labels a data set has (a 52-label matrix drawn cell by cell took 1.5 GB and 14 s).
ANNOTATED_LABELS = 20
MAX_INCHES = 16.0


def _confusion_matrix(matrix: list[list[float]], labels: list[str], path: Path) -> Path:
    k = len(labels)
    width, height = min(MAX_INCHES, 1.2 * k + 2.5), min(MAX_INCHES, 1.1 * k + 2)
    with _figure(path, figsize=(width, height)) as fig:
        ax = fig.subplots()
        ticks = max(4.0, min(10.0, 360 / max(k, 1)))
        if k > ANNOTATED_LABELS:  # colour = the row's share, so rare classes stay visible
            shares = [[v / (sum(row) or 1) for v in row] for row in matrix]
            ax.imshow(shares, cmap="Blues", vmin=0, vmax=1, interpolation="nearest")
        else:
            ax.imshow(matrix, cmap="Blues")
        ax.set_xticks(range(k), labels, rotation=90 if k > ANNOTATED_LABELS else 30, ha="right")
        ax.set_yticks(range(k), labels)
        ax.tick_params(labelsize=ticks)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        peak = max((max(row) for row in matrix), default=0)
        for i, row in enumerate(matrix if k <= ANNOTATED_LABELS else []):
            total = sum(row) or 1
            for j, value in enumerate(row):
                color = "white" if value > peak / 2 else "black"
                ax.text(
                    j,
                    i,
                    f"{int(value)}\n{value / total:.0%}",
                    ha="center",
                    va="center",
                    color=color,
                    fontsize=8,
                )
        ax.set_title(
            "test confusion matrix"
            + (" (colour: share of the true label's rows)" if k > ANNOTATED_LABELS else "")
        )
    return path
