"""Sweep summaries: one row per job of a multirun dir, then mean +- std over seeds per configuration.

Reads only what each job left on disk (``.hydra/overrides.yaml``, ``metrics.json``, ``error.txt``),
so it also summarises a sweep that was interrupted or ran elsewhere:
``python -m sftlab.reporting.summary outputs/multirun/<date>/<time>``.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sftlab.utils.files import atomic_path, write_text

# Overrides that vary between repeats of one configuration, not between configurations.
REPEAT_KEYS = ("seed",)
# Columns of summary.md, when present (summary.csv holds every scalar metric).
MD_METRICS = ("best_val/f1_macro", "test/acc", "test/f1_macro", "test/f1_weighted")
SIZE_KEY = "data.train_size"


@dataclass
class Job:
    """One job of a sweep: its overrides and what its metrics.json says (empty when it failed)."""

    num: int
    dir: Path
    overrides: list[str]
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    common: frozenset[str] = (
        frozenset()
    )  # overrides every job of the sweep shares (not shown per job)

    @property
    def ok(self) -> bool:
        return bool(self.metrics)

    def override_dict(self) -> dict[str, str]:
        return dict(o.lstrip("+~").split("=", 1) for o in self.overrides if "=" in o)

    @property
    def varying(self) -> list[str]:
        """The overrides that set this job apart from the others of its sweep."""
        return [o for o in self.overrides if o not in self.common]

    @property
    def config(self) -> str:
        """The varying overrides minus the seed: jobs with equal ``config`` are repeats."""
        kept = [o for o in self.varying if o.lstrip("+~").split("=", 1)[0] not in REPEAT_KEYS]
        return ",".join(kept) or "defaults"

    def scalars(self) -> dict[str, float]:
        return {k: float(v) for k, v in self.metrics.items() if _is_number(v)}


def collect_jobs(sweep_dir: Path) -> list[Job]:
    """Every job dir under ``sweep_dir`` (those holding ``.hydra/overrides.yaml``), by job number."""
    jobs = []
    for overrides_file in sorted(Path(sweep_dir).glob("**/.hydra/overrides.yaml")):
        job_dir = overrides_file.parent.parent
        overrides = yaml.safe_load(overrides_file.read_text(encoding="utf-8")) or []
        hydra_file = job_dir / ".hydra" / "hydra.yaml"
        num = _job_num(hydra_file, job_dir)
        job = Job(num=num, dir=job_dir, overrides=[str(o) for o in overrides])
        metrics_file = job_dir / "metrics.json"
        if metrics_file.exists():
            try:
                job.metrics = json.loads(metrics_file.read_text(encoding="utf-8"))
            except json.JSONDecodeError as e:
                job.error = f"unreadable metrics.json: {e}"
        error_file = job_dir / "error.txt"
        if not job.ok:
            job.error = job.error or (
                error_file.read_text().strip().splitlines()[-1][:200]
                if error_file.exists() and error_file.read_text().strip()
                else "no metrics.json"
            )
        jobs.append(job)
    if len(jobs) > 1:
        common = frozenset.intersection(*(frozenset(j.overrides) for j in jobs))
        for job in jobs:
            job.common = common
    return sorted(jobs, key=lambda j: j.num)


def _job_num(hydra_file: Path, job_dir: Path) -> int:
    if hydra_file.exists():
        try:
            return int(yaml.safe_load(hydra_file.read_text())["hydra"]["job"]["num"])
        except (KeyError, TypeError, ValueError, yaml.YAMLError):
            pass
    return int(job_dir.name) if job_dir.name.isdigit() else 0


@dataclass
class Group:
    """The jobs of one configuration (the seeds of one setting)."""

    config: str
    jobs: list[Job]

    def values(self, metric: str) -> list[float]:
        return [j.scalars()[metric] for j in self.jobs if j.ok and metric in j.scalars()]

    def mean_std(self, metric: str) -> tuple[float, float, int]:
        """Mean, sample std (0 for a single run) and count over the finished jobs."""
        vals = [v for v in self.values(metric) if not math.isnan(v)]
        if not vals:
            return math.nan, math.nan, 0
        std = statistics.stdev(vals) if len(vals) > 1 else 0.0
        return statistics.fmean(vals), std, len(vals)


def group_jobs(jobs: list[Job]) -> list[Group]:
    """Jobs grouped by configuration, in order of first appearance."""
    groups: dict[str, list[Job]] = {}
    for job in jobs:
        groups.setdefault(job.config, []).append(job)
    return [Group(config, members) for config, members in groups.items()]


def metric_columns(jobs: list[Job]) -> list[str]:
    """Every scalar metric any job reported, the tables' headline metrics first."""
    seen: dict[str, None] = {}
    for job in jobs:
        for key in job.scalars():
            seen.setdefault(key, None)
    first = [m for m in MD_METRICS if m in seen]
    return first + sorted(k for k in seen if k not in first)


def write_csv(jobs: list[Job], path: Path) -> None:
    import csv

    columns = metric_columns(jobs)
    with atomic_path(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["job", "overrides", "config", "status", *columns, "error"])
        for job in jobs:
            scalars = job.scalars()
            writer.writerow(
                [
                    job.num,
                    " ".join(job.overrides),
                    job.config,
                    "ok" if job.ok else "failed",
                    *(_fmt(scalars.get(c), 6) for c in columns),
                    job.error,
                ]
            )


def write_markdown(
    jobs: list[Job], groups: list[Group], metric: str, path: Path, plots: list[str]
) -> None:
    columns = [c for c in metric_columns(jobs) if c in MD_METRICS or c == metric]
    extra = [
        c for c in ("train_rows", "trainable_params", "wall_seconds") if c in metric_columns(jobs)
    ]
    lines = [f"# Sweep summary: {path.parent.name}", ""]
    failed = [j for j in jobs if not j.ok]
    lines.append(f"{len(jobs)} jobs, {len(jobs) - len(failed)} finished, {len(failed)} failed.")
    common = [o for o in jobs[0].overrides if o in jobs[0].common]
    if common:
        lines += ["", "Overrides shared by every job: `" + " ".join(common) + "`"]
    lines += ["", f"## Mean +- std over seeds (`{metric}`)", ""]
    stat_cols = columns if metric in columns else [metric, *columns]
    lines.append("| configuration | runs | " + " | ".join(stat_cols) + " |")
    lines.append("|---|---|" + "---|" * len(stat_cols))
    for group in sorted(groups, key=lambda g: _sort_key(g.mean_std(metric)[0])):
        cells = []
        for col in stat_cols:
            mean, std, n = group.mean_std(col)
            cells.append("" if n == 0 else f"{mean:.4f} +- {std:.4f}")
        runs = f"{sum(j.ok for j in group.jobs)}/{len(group.jobs)}"
        lines.append(f"| `{group.config}` | {runs} | " + " | ".join(cells) + " |")
    lines += ["", "## Jobs", ""]
    lines.append("| job | overrides | status | " + " | ".join(columns + extra) + " |")
    lines.append("|---|---|---|" + "---|" * len(columns + extra))
    for job in jobs:
        scalars = job.scalars()
        status = "ok" if job.ok else f"**failed**: {job.error}"
        cells = [_fmt(scalars.get(c), 4) for c in columns] + [
            _fmt(scalars.get(c), 1) for c in extra
        ]
        lines.append(
            f"| {job.num} | `{' '.join(job.varying) or 'defaults'}` | {status} | "
            + " | ".join(cells)
            + " |"
        )
    if plots:
        lines += ["", "## Plots", ""] + [f"![{p}]({p})" for p in plots]
    write_text(path, "\n".join(lines) + "\n")


def summarize(sweep_dir: Path, metric: str = "test/f1_macro") -> list[Job]:
    """Write summary.csv, summary.md and the plots into ``sweep_dir``; return the jobs."""
    from sftlab.reporting import plots  # matplotlib (0.7 s) loads only when a summary is drawn

    sweep_dir = Path(sweep_dir)
    jobs = collect_jobs(sweep_dir)
    if not jobs:
        return jobs
    groups = group_jobs(jobs)
    written = []
    if any(g.mean_std(metric)[2] for g in groups):
        written.append(plots.metric_by_config(groups, metric, sweep_dir / "summary.png").name)
    curve = learning_curve(jobs, metric)
    if curve:
        written.append(plots.learning_curve(curve, metric, sweep_dir / "learning_curve.png").name)
    write_csv(jobs, sweep_dir / "summary.csv")
    write_markdown(jobs, groups, metric, sweep_dir / "summary.md", written)
    return jobs


def learning_curve(
    jobs: list[Job], metric: str
) -> dict[str, list[tuple[float, float, float, int]]]:
    """When the sweep varies ``data.train_size``: per other-setting, (rows, mean, std, n) by size."""
    sizes = {j.override_dict().get(SIZE_KEY) for j in jobs}
    if len(sizes - {None}) < 2:
        return {}
    lines: dict[str, dict[str, list[Job]]] = {}
    for job in jobs:
        if not job.ok or metric not in job.scalars():
            continue
        rest = (
            ",".join(o for o in job.config.split(",") if not o.startswith(f"{SIZE_KEY}="))
            or "defaults"
        )
        lines.setdefault(rest, {}).setdefault(job.override_dict().get(SIZE_KEY, "all"), []).append(
            job
        )
    curve: dict[str, list[tuple[float, float, float, int]]] = {}
    for rest, by_size in lines.items():
        points = []
        for members in by_size.values():
            rows = [j.scalars().get("train_rows", math.nan) for j in members]
            group = Group(rest, members)
            mean, std, n = group.mean_std(metric)
            points.append((statistics.fmean(rows), mean, std, n))
        curve[rest] = sorted(points)
    return curve


def _sort_key(value: float) -> float:
    return math.inf if math.isnan(value) else -value


def _fmt(value: float | None, digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if float(value).is_integer() and abs(value) >= 1:
        return str(int(value))
    return f"{value:.{digits}f}"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def main(argv: list[str] | None = None) -> int:
    """``python -m sftlab.reporting.summary SWEEP_DIR [METRIC]``: (re)write a sweep's summary."""
    parser = argparse.ArgumentParser(
        prog="python -m sftlab.reporting.summary",
        description="Write summary.csv, summary.md and the plots of a multirun (sweep) dir, "
        "from what its jobs left on disk.",
    )
    parser.add_argument(
        "sweep_dir", type=Path, help="a multirun dir: outputs/multirun/<date>/<time>"
    )
    parser.add_argument(
        "metric",
        nargs="?",
        default="test/f1_macro",
        help="the metric averaged over seeds and plotted per configuration (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    where = args.sweep_dir
    if not where.is_dir():
        print(
            f"error: {where} is not a folder: pass a multirun dir (outputs/multirun/<date>/<time>)",
            file=sys.stderr,
        )
        return 2
    if not summarize(where, args.metric):
        print(
            f"error: {where} holds no sweep jobs (no <job>/.hydra/overrides.yaml): pass the "
            f"multirun dir that python train.py -m wrote (outputs/multirun/<date>/<time>)",
            file=sys.stderr,
        )
        return 2
    print(where / "summary.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
