"""What a run shows at its end: the console table of test metrics, and report.md in the run dir."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from sftlab.config.metric_names import safe_label
from sftlab.export.model_card import perplexity_lines, sample_table
from sftlab.reporting.baseline import NAME, shortfall
from sftlab.utils.files import write_text

# Past this many labels the console shows no per-class rows and no confusion matrix: report.md
# and metrics.json hold them (52 labels made 104 rows and a 52-column matrix nobody reads).
CONSOLE_LABELS = 12


def print_metrics(
    metrics: dict[str, Any], label_names: list[str], title: str = "test metrics"
) -> None:
    """The scalar test metrics as a table beside the linear baseline's, then (up to
    ``CONSOLE_LABELS`` labels) the confusion matrix with label names."""
    console = Console()
    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    few = len(label_names) <= CONSOLE_LABELS
    per_class = {f"test/{kind}_{safe_label(n)}" for n in label_names for kind in ("recall", "f1")}
    for key, value in metrics.items():
        if isinstance(value, float) and key.startswith("test/") and (few or key not in per_class):
            table.add_row(key, f"{value:.4f}")
    for key in ("baseline/acc", "baseline/f1_macro"):
        if key in metrics:
            table.add_row(f"{key} ({NAME})", f"{metrics[key]:.4f}")
    for key, value in metrics.items():
        if key.startswith("best_"):
            table.add_row(key, f"{value:.4f}")
    if "trainable_params" in metrics:
        table.add_row(
            "trainable params", f"{metrics['trainable_params']:,} of {metrics['total_params']:,}"
        )
    for key in ("fit_seconds", "wall_seconds"):
        if key in metrics:
            table.add_row(key.replace("_seconds", " time"), f"{metrics[key]:.1f} s")
    console.print(table)
    cm = metrics.get("test/confusion_matrix")
    if cm and few:
        matrix = Table(title="test confusion matrix (rows: true, columns: predicted)")
        matrix.add_column("")
        for name in label_names:
            matrix.add_column(name, justify="right")
        for name, row in zip(label_names, cm, strict=False):
            matrix.add_row(name, *(str(int(v)) for v in row))
        console.print(matrix)
    elif cm:
        console.print(
            f"{len(label_names)} labels: per-class scores and the confusion matrix are in "
            f"report.md and metrics.json"
        )


def per_class_table(metrics: dict[str, Any], label_names: list[str]) -> list[dict[str, Any]]:
    """Support, precision, recall and F1 per label; precision comes from the confusion matrix."""
    cm = metrics.get("test/confusion_matrix") or []
    rows = []
    for i, name in enumerate(label_names):
        key = safe_label(name)
        support = int(sum(cm[i])) if i < len(cm) else None
        predicted = sum(row[i] for row in cm) if cm else 0
        precision = cm[i][i] / predicted if cm and predicted else (0.0 if cm else None)
        rows.append(
            {
                "label": name,
                "support": support,
                "precision": precision,
                "recall": metrics.get(f"test/recall_{key}"),
                "f1": metrics.get(f"test/f1_{key}"),
            }
        )
    return rows


def write_report(
    run_dir: Path, metrics: dict[str, Any], label_names: list[str], monitor: str = "val/f1_macro"
) -> Path:
    """``report.md`` in the run dir: headline metrics, per-class table, learning curves, confusion matrix.

    The curves come from the CSV logger's ``csv/metrics.csv`` (kept next to W&B too).
    """
    from sftlab.reporting import plots  # matplotlib (0.7 s) loads only when a report is drawn

    run_dir = Path(run_dir)
    figures = run_dir / "report"
    figures.mkdir(exist_ok=True)
    lines = [f"# Run report: {run_dir.name}", ""]
    headline = [
        k
        for k in ("test/acc", "test/f1_macro", "test/f1_weighted", f"best_{monitor}")
        if k in metrics
    ]
    if headline:
        lines += ["| metric | value |", "|---|---|"]
        lines += [f"| {k} | {metrics[k]:.4f} |" for k in headline]
        if "trainable_params" in metrics:
            lines.append(
                f"| trainable params | {metrics['trainable_params']:,} of {metrics['total_params']:,} |"
            )
        for key in ("train_rows", "epochs", "wall_seconds"):
            if key in metrics:
                lines.append(f"| {key.replace('_', ' ')} | {metrics[key]} |")
        lines.append("")
    lines += baseline_lines(metrics)
    if metrics.get("test/confusion_matrix"):
        lines += [
            "## Per class (test)",
            "",
            "| label | support | precision | recall | F1 |",
            "|---|---|---|---|---|",
        ]
        for row in per_class_table(metrics, label_names):
            cells = [_cell(row[k]) for k in ("precision", "recall", "f1")]
            lines.append(f"| {row['label']} | {row['support']} | " + " | ".join(cells) + " |")
        plots.confusion_matrix(
            metrics["test/confusion_matrix"], label_names, figures / "confusion_matrix.png"
        )
        lines += ["", "## Confusion matrix (test; rows = true, columns = predicted)", ""]
        lines += ["![test confusion matrix](report/confusion_matrix.png)", ""]
    lines += curve_lines(run_dir, monitor)
    report = run_dir / "report.md"
    write_text(report, "\n".join(lines))
    return report


def curve_lines(run_dir: Path, monitor: str) -> list[str]:
    """The learning curves drawn from the CSV logger's ``csv/metrics.csv`` (kept next to W&B
    too) into ``report/curves.png``, and the lines of report.md that show them."""
    from sftlab.reporting import plots  # matplotlib (0.7 s) loads only when a report is drawn

    csv_file = run_dir / "csv" / "metrics.csv"
    if not csv_file.exists():
        return ["No csv/metrics.csv (logger=null): no learning curves.", ""]
    import pandas as pd

    (run_dir / "report").mkdir(exist_ok=True)
    frame = pd.read_csv(csv_file, encoding="utf-8")
    if not plots.training_curves(frame, monitor, run_dir / "report" / "curves.png"):
        return []
    return [
        "## Learning curves",
        "",
        "![loss and validation metric per epoch](report/curves.png)",
        "",
    ]


def write_generation_report(
    run_dir: Path, metrics: dict[str, Any], samples: list[dict[str, Any]]
) -> Path:
    """``report.md`` of a causal-LM run: perplexity before and after fine-tuning, chrF/BLEU of
    the generated test replies, a few of them beside their references, the learning curves."""
    run_dir = Path(run_dir)
    lines = [f"# Run report: {run_dir.name}", "", "## Metrics", "", *perplexity_lines(metrics)]
    facts = [
        (key.replace("_", " "), metrics[key])
        for key in ("epochs", "fit_seconds", "wall_seconds")
        if key in metrics
    ]
    if "trainable_params" in metrics:
        facts.insert(
            0,
            ("trainable params", f"{metrics['trainable_params']:,} of {metrics['total_params']:,}"),
        )
    lines += ["", "| run | value |", "|---|---|", *(f"| {k} | {v} |" for k, v in facts), ""]
    lines += [
        "## Sample generations (test)",
        "",
        *sample_table(samples),
        "",
        f"All generated replies: generations.jsonl ({int(metrics.get('test/generated', 0))} rows).",
        "",
    ]
    monitor = "val/perplexity" if "val/perplexity" in metrics else "val/loss"
    lines += curve_lines(run_dir, monitor)
    report = run_dir / "report.md"
    write_text(report, "\n".join(lines))
    return report


def baseline_lines(metrics: dict[str, Any]) -> list[str]:
    """The model beside the linear baseline on the same test split, with the warning when the
    model scores below it."""
    if "baseline/acc" not in metrics:
        return []
    lines = [
        "## Against the linear baseline (test)",
        "",
        "| | accuracy | macro-F1 |",
        "|---|---|---|",
        f"| fine-tuned model | {_cell(metrics.get('test/acc'))} | {_cell(metrics.get('test/f1_macro'))} |",
        f"| {NAME} ({metrics.get('baseline/seconds', 0):.1f} s) | {_cell(metrics['baseline/acc'])} "
        f"| {_cell(metrics.get('baseline/f1_macro'))} |",
        "",
    ]
    warning = shortfall(metrics)
    if warning:
        lines += [f"**Warning:** {warning}.", ""]
    return lines


def _cell(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"
