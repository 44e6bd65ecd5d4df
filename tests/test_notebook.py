"""notebooks/quickstart.ipynb runs top to bottom and is committed without outputs."""

from __future__ import annotations

import json
import os
import time

import pytest

from tests.conftest import ROOT

NOTEBOOK = ROOT / "notebooks" / "quickstart.ipynb"


def test_notebook_is_committed_without_outputs():
    nb = json.loads(NOTEBOOK.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code
    for cell in code:
        assert cell["outputs"] == [] and cell["execution_count"] is None, (
            "strip the outputs before committing"
        )


def execute(monkeypatch, timeout: int = 600, **env: str):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT / "src"), str(ROOT)]))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    started = time.perf_counter()
    nbclient.NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    ).execute()
    return nb, time.perf_counter() - started


def _text(nb) -> str:
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", "") + out.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def test_notebook_runs_top_to_bottom(monkeypatch, tmp_path):
    """The same cells with a tiny random model (SFTLAB_NOTEBOOK_SMOKE=1), so it takes seconds."""
    run_dir = tmp_path / "quickstart"
    nb, _ = execute(monkeypatch, SFTLAB_NOTEBOOK_SMOKE="1", SFTLAB_NOTEBOOK_RUN_DIR=str(run_dir))
    text = _text(nb)
    assert "test accuracy" in text and "my bag is lost" in text
    images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) == 2  # learning curves and confusion matrix
    assert (run_dir / "metrics.json").exists() and (run_dir / "model" / "config.json").exists()


@pytest.mark.slow
def test_notebook_real_minilm_run(monkeypatch):
    """The notebook as users run it: MiniLM, 800 tweets, 2 epochs, on the CPU."""
    nb, seconds = execute(
        monkeypatch, timeout=1800
    )  # ~1 min idle; a shared, loaded CPU takes far longer
    metrics = json.loads((ROOT / "outputs" / "quickstart" / "metrics.json").read_text())
    assert metrics["train_rows"] == 800
    assert metrics["test/acc"] > 0.7, metrics  # the majority class alone gives 0.63
    print(
        f"notebook: {seconds:.0f} s, test acc {metrics['test/acc']:.3f}, macro-F1 {metrics['test/f1_macro']:.3f}"
    )
