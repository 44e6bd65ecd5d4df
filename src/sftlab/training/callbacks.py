"""Callbacks a run adds from its config: early stopping on the monitored metric
(``early_stopping.patience``)."""

from __future__ import annotations

from typing import Any

from lightning.pytorch.callbacks import EarlyStopping

from sftlab.utils.errors import SftlabError


def early_stopping(cfg: Any, monitor: str, mode: str) -> list[EarlyStopping]:
    """``[EarlyStopping]`` on the monitored metric when ``early_stopping.patience`` is set, else []."""
    settings = cfg.get("early_stopping") or {}
    patience = settings.get("patience")
    if patience is None:
        return []
    if not isinstance(patience, int) or patience < 1:
        raise SftlabError(
            f"early_stopping.patience must be a whole number >= 1 (or null: off), got {patience!r}"
        )
    from lightning.pytorch.callbacks import EarlyStopping

    return [
        EarlyStopping(
            monitor=monitor,
            mode=mode,
            patience=patience,
            min_delta=float(settings.get("min_delta", 0.0)),
            verbose=True,
        )
    ]
