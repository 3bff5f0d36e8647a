"""The wiring of a run, and the only package that reads the composed Hydra config.

``train.py`` -> :func:`braintumor.pipeline.train.train` or
:func:`braintumor.pipeline.evaluate.evaluate`. Below this package nothing receives a
``DictConfig``: settings objects and value objects travel instead.

- ``config_check``: the checks ``train.py`` runs before torch is imported (stdlib + OmegaConf);
- ``settings``: the settings objects made from the config (evaluation, loaders);
- ``build``: the datamodule, the LightningModule and the Trainer of a config;
- ``train`` / ``evaluate``: the two runs; ``report``: a checkpoint's val/test reports;
- ``card``: the run's model card; ``hparams``: what a person chose, for the loggers;
- ``external`` / ``external_sets``: scoring a set the model never saw, and which sets those are;
- ``sweep_callback``: Hydra's callback that writes the sweep report.

This ``__init__`` imports nothing, so that the checks stay fast.
"""
