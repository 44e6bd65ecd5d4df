"""One LightningModule per ``data.task``, each with its loss and metrics: ``classification``
(single-label), ``multilabel``, ``regression`` (encoders, sharing ``base.EncoderTask``) and
``generation`` (a causal LM). ``build.build_module`` picks the one a run needs."""
