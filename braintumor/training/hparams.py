"""Hyperparameters for the loggers: the run's config at the start, and again at the end with
its final metrics (under their own names, e.g. ``test/f1_macro``), so TensorBoard's HPARAMS
tab compares the runs of a sweep."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from hydra.core.hydra_config import HydraConfig
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.loggers import TensorBoardLogger
from omegaconf import DictConfig, OmegaConf

from braintumor.evaluation.metrics import metric_key

HPARAM_SECTIONS = ("data", "model", "trainer", "seed")
# the final metrics shown in the HPARAMS tab, named as everywhere else
HP_METRICS = (
    metric_key("val", "f1_macro_best"),
    metric_key("val", "f1_macro"),
    metric_key("val", "accuracy"),
    metric_key("val", "log_loss"),
    metric_key("test", "f1_macro"),
    metric_key("test", "accuracy"),
    metric_key("test", "ece"),
    "epoch",  # epochs completed
)


def run_hparams(cfg: DictConfig, module: LightningModule) -> dict[str, Any]:
    """The config sections that define a run, the chosen config groups (``augment``,
    ``model``, ``experiment``, ... as ``choice/<group>``) and the parameter count."""
    params: dict[str, Any] = {
        k: OmegaConf.to_container(cfg[k], resolve=True) if OmegaConf.is_config(cfg[k]) else cfg[k]
        for k in HPARAM_SECTIONS
        if k in cfg
    }
    if HydraConfig.initialized():
        choices = HydraConfig.get().runtime.choices
        params["choice"] = {
            k: v for k, v in choices.items() if not k.startswith("hydra") and v is not None
        }
    params["model/params/total"] = sum(p.numel() for p in module.parameters())
    return params


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


def log_final(trainer: Trainer, params: Mapping[str, Any], metrics: Mapping[str, float]) -> None:
    """Log the hyperparameters with their final metrics (the HPARAMS tab's rows).

    The tab shows a metric's last value in the run: the values are logged once more at the
    final step, so the curves' last points are the final metrics (best checkpoint's val/test).
    """
    values = hp_metrics(metrics)
    if not values:
        return
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.log_hyperparams(dict(params), metrics=values, step=trainer.global_step)
        else:  # other loggers have no hparams/metrics pairing: the values alone
            logger.log_metrics(values, step=trainer.global_step)
