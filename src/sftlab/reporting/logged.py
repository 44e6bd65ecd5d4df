"""The run's figures for TensorBoard and MLflow: the test confusion matrix and the learning
curves that report.md shows (``report/*.png``), then each of these loggers closed, so that its
files hold every metric. W&B gets its own tables from ``sftlab.reporting.wandb_tables``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import MLFlowLogger, TensorBoardLogger

from sftlab.training.loggers import as_list


def finish(logger: Any, run_dir: Path, step: int = 0) -> None:
    """``report/*.png`` as images (TensorBoard, tag ``report/<name>``) or artifacts (MLflow,
    ``report/<name>.png``, with report.md); then the logger is finalized."""
    run_dir = Path(run_dir)
    figures = sorted((run_dir / "report").glob("*.png"))
    for each in as_list(logger):
        if isinstance(each, TensorBoardLogger):
            from matplotlib.image import imread

            for png in figures:
                pixels = imread(png)[..., :3]  # RGBA floats in [0, 1]: the colour channels
                each.experiment.add_image(
                    f"report/{png.stem}", pixels, global_step=step, dataformats="HWC"
                )
        elif isinstance(each, MLFlowLogger):
            for path in [*figures, run_dir / "report.md"]:
                if path.is_file():
                    folder = "report" if path.parent.name == "report" else None
                    each.experiment.log_artifact(each.run_id, str(path), artifact_path=folder)
        else:
            continue
        each.finalize("success")
