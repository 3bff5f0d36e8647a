"""Hyperparameters for the loggers: what a person chose for a run (chosen by
:mod:`braintumor.pipeline.hparams`), logged at the start and again at the end with the final
metrics (under their own names, e.g. ``test/f1_macro``), so TensorBoard's HPARAMS tab tells
the runs of a sweep apart by what differs between them (``differing``)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from lightning.pytorch import Trainer
from lightning.pytorch.loggers import TensorBoardLogger

from braintumor.vocabulary import hparams_keys

# the final metrics shown in the HPARAMS tab, named as everywhere else
HP_METRICS = hparams_keys()


def hp_metrics(metrics: Mapping[str, float]) -> dict[str, float]:
    """The finite final metrics of :data:`HP_METRICS`."""
    return {
        key: float(metrics[key])
        for key in HP_METRICS
        if key in metrics and math.isfinite(float(metrics[key]))
    }


def log_start(trainer: Trainer, params: Mapping[str, Any]) -> None:
    """Record the hyperparameters (``hparams.yaml``) before training."""
    for logger in trainer.loggers:
        logger.log_hyperparams(dict(params))


def log_final(
    trainer: Trainer,
    params: Mapping[str, Any],
    metrics: Mapping[str, float],
    differing: Sequence[str] = (),
) -> None:
    """Log the hyperparameters with their final metrics (the HPARAMS tab's rows); the keys
    ``differing`` between the runs of a sweep are marked there (TensorBoard lists them first).

    The tab shows a metric's last value in the run: the values are logged once more at the
    final step, so the curves' last points are the final metrics (best checkpoint's val/test).
    """
    values = hp_metrics(metrics)
    if not values:
        return
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            if hasattr(logger, "differing"):  # RunBoard
                logger.differing = set(differing)
            logger.log_hyperparams(dict(params), metrics=values, step=trainer.global_step)
        else:  # other loggers have no hparams/metrics pairing: the values alone
            logger.log_metrics(values, step=trainer.global_step)
