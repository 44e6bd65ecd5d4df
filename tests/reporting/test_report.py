"""Every run leaves report.md with learning curves, the confusion matrix and a per-class table."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from sftlab import train
from sftlab.reporting.report import per_class_table, write_report


def test_run_writes_report_with_linked_figures(tiny_cfg, capsys):
    cfg = tiny_cfg("trainer.max_epochs=2", "data.batch_size=16", "trainer.enable_progress_bar=true")
    train(cfg)
    # not a terminal: one plain line per epoch instead of a live bar, then the rich table of test metrics
    console = capsys.readouterr().out
    epochs = [line for line in console.splitlines() if line.startswith("epoch ")]
    assert [line.split()[1] for line in epochs] == ["1/2", "2/2"]
    assert all("val/f1_macro" in line and "train/loss_epoch" in line for line in epochs)
    assert "Epoch 1/" not in console and "test metrics" in console and "test/f1_macro" in console
    out = Path(cfg.output_dir)
    report = (out / "report.md").read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report)
    assert set(links) == {"report/confusion_matrix.png", "report/curves.png"}
    for link in links:
        assert (out / link).read_bytes()[:4] == b"\x89PNG"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["train_rows"] == 72
    for row in per_class_table(metrics, ["negative", "neutral", "positive"]):
        assert (
            f"| {row['label']} | 3 | {row['precision']:.4f} | {row['recall']:.4f} | {row['f1']:.4f} |"
            in report
        )
    _assert_no_phantom_epoch(out, metrics, epochs=2)


def _assert_no_phantom_epoch(out: Path, metrics: dict, epochs: int) -> None:
    """The best checkpoint's validation after fit is logged as best/val/*, in a row with no
    epoch (with the test metrics): the CSV, the curves and the notebook's history table (the
    same groupby) show the trained epochs only."""
    history = pd.read_csv(out / "csv" / "metrics.csv")
    assert set(history["epoch"].dropna().astype(int)) == set(range(epochs))
    table = history.groupby("epoch")[["val/loss", "val/acc", "val/f1_macro"]].last().dropna()
    assert len(table) == epochs  # quickstart.ipynb's history table
    (after,) = history[history["epoch"].isna()].to_dict("records")
    assert after["step"] == history["step"].max()
    for key in ("val/loss", "val/f1_macro", "test/acc", "test/f1_macro"):
        logged = after[f"best/{key}" if key.startswith("val/") else key]
        assert logged == pytest.approx(metrics[key], abs=1e-6), key


def test_per_class_precision_from_confusion_matrix():
    metrics = {
        "test/confusion_matrix": [[3, 1], [2, 4]],
        "test/recall_a": 0.75,
        "test/f1_a": 0.6667,
        "test/recall_b_c": 4 / 6,
        "test/f1_b_c": 0.7273,
    }
    rows = per_class_table(metrics, ["a", "b c"])
    assert [r["support"] for r in rows] == [4, 6]
    assert rows[0]["precision"] == pytest.approx(3 / 5) and rows[1]["precision"] == pytest.approx(
        4 / 5
    )
    assert rows[1]["recall"] == pytest.approx(4 / 6)  # label "b c" is keyed as b_c


def test_report_without_csv_log(tmp_path):
    metrics = {"test/acc": 0.5, "test/confusion_matrix": [[1, 1], [0, 2]]}
    report = write_report(tmp_path, metrics, ["a", "b"]).read_text()
    assert (
        "no learning curves" in report and (tmp_path / "report" / "confusion_matrix.png").exists()
    )
