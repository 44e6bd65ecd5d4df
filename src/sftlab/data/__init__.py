"""Data: sources (files, packaged sets, the hub) -> cleaning -> split -> tokenize -> batches.
``datamodule.TextDataModule`` serves the encoder tasks, ``generation.GenerationDataModule``
the causal LM."""
