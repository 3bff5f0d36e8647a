"""Training: the LightningModule that binds a network to its loss, optimizer and metrics,
its callbacks, learning-rate schedules and TensorBoard hparams."""
