"""The generic LightningModule and the callbacks of the training loop."""
