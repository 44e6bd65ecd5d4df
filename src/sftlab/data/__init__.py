"""Data: sources (files, packaged sets) -> cleaning -> split -> tokenize -> batches."""

from sftlab.data.datamodule import TextClassificationDataModule

__all__ = ["TextClassificationDataModule"]
