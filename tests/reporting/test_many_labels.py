"""Many labels (52 in Reuters R52, hundreds in intent sets): what a run draws and prints per
label stays bounded in memory, time and lines."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import pandas as pd

from sftlab.data.datamodule import describe_counts
from sftlab.reporting.report import print_metrics

DRAW = """
import json, resource, sys
from pathlib import Path
from sftlab.reporting import plots
k, path = int(sys.argv[1]), Path(sys.argv[2])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
matrix = [[(i * 7 + j * 3) % 50 for j in range(k)] for i in range(k)]
plots.confusion_matrix(matrix, [f"label_{i}" for i in range(k)], path)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"grew_mb": (after - before) / 1024}))
"""


def _draw(k: int, path: Path) -> float:
    out = subprocess.run(
        [sys.executable, "-c", DRAW, str(k), str(path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])["grew_mb"]


def _png_size(path: Path) -> tuple[int, int]:
    width, height = struct.unpack(">II", path.read_bytes()[16:24])
    return width, height


def test_confusion_matrix_memory_does_not_grow_with_labels(tmp_path):
    # Drawn cell by cell at 1.2 inches per label, 52 labels took 1.5 GB and 14 s.
    few = _draw(10, tmp_path / "few.png")
    many = _draw(200, tmp_path / "many.png")
    assert many < few + 150, (few, many)
    assert max(_png_size(tmp_path / "many.png")) <= 16 * 110


def test_console_summarises_many_labels(capsys):
    labels = [f"topic_{i}" for i in range(52)]
    metrics = {
        "test/acc": 0.9,
        "test/f1_macro": 0.6,
        "baseline/acc": 0.94,
        "baseline/f1_macro": 0.66,
    }
    metrics |= {f"test/f1_{name}": 0.5 for name in labels}
    metrics["test/confusion_matrix"] = [[1] * 52 for _ in range(52)]
    print_metrics(metrics, labels)
    out = capsys.readouterr().out
    assert "test/f1_macro" in out and "baseline/f1_macro" in out
    assert "test/f1_topic_7" not in out and "52 labels: per-class scores" in out
    assert len(out.splitlines()) < 25
    three = ["negative", "neutral", "positive"]
    print_metrics({"test/f1_neutral": 0.5, "test/confusion_matrix": [[1] * 3] * 3}, three)
    assert "test/f1_neutral" in capsys.readouterr().out


def test_label_counts_log_line_is_short_for_many_labels():
    counts = pd.Series({f"topic_{i}": 100 - i for i in range(52)})
    line = describe_counts(counts)
    assert line.startswith("52 labels, largest 'topic_0' 100") and "smallest" in line
    assert "'topic_51' 49" in line and len(line) < 200
    assert describe_counts(pd.Series({"ham": 9, "spam": 1})) == "labels {'ham': 9, 'spam': 1}"
