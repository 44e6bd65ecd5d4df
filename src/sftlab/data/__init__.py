"""Data: sources (files, packaged sets) -> cleaning -> split -> tokenize -> batches."""

from typing import Any

__all__ = ["TextClassificationDataModule"]


def __getattr__(name: str) -> Any:
    # Imported on first use: sftlab.config.data (the config check) must not pull in torch.
    if name == "TextClassificationDataModule":
        from sftlab.data.datamodule import TextClassificationDataModule

        return TextClassificationDataModule
    raise AttributeError(f"module 'sftlab.data' has no attribute {name!r}")
