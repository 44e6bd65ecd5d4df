"""Models: backbone loading (hub name, local folder, packaged weights) and the LightningModule."""
