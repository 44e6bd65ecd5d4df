"""Console output of the final metrics (rich table)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def print_metrics(metrics: dict[str, Any], label_names: list[str], title: str = "test metrics") -> None:
    """The scalar test metrics as a table, then the confusion matrix with label names."""
    console = Console()
    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in metrics.items():
        if isinstance(value, float) and key.startswith("test/"):
            table.add_row(key, f"{value:.4f}")
    for key, value in metrics.items():
        if key.startswith("best_"):
            table.add_row(key, f"{value:.4f}")
    if "trainable_params" in metrics:
        table.add_row("trainable params", f"{metrics['trainable_params']:,} of {metrics['total_params']:,}")
    for key in ("fit_seconds", "wall_seconds"):
        if key in metrics:
            table.add_row(key.replace("_seconds", " time"), f"{metrics[key]:.1f} s")
    console.print(table)
    cm = metrics.get("test/confusion_matrix")
    if cm:
        matrix = Table(title="test confusion matrix (rows: true, columns: predicted)")
        matrix.add_column("")
        for name in label_names:
            matrix.add_column(name, justify="right")
        for name, row in zip(label_names, cm):
            matrix.add_row(name, *(str(int(v)) for v in row))
        console.print(matrix)
