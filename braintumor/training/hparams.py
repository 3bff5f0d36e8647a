"""Hyperparameters for the loggers: the run's config at the start, and again at the end with
its final ``hp/`` metrics, so TensorBoard's HPARAMS tab compares the runs of a sweep."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from hydra.core.hydra_config import HydraConfig
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.loggers import TensorBoardLogger
from omegaconf import DictConfig, OmegaConf

HPARAM_SECTIONS = ("data", "model", "trainer", "seed")
# final metrics shown in the HPARAMS tab, as hp/<key>: (pipeline metric, hp key)
HP_METRICS = {
    "val/f1_best": "hp/val_f1_best",
    "val/f1_macro": "hp/val_f1",
    "val/accuracy": "hp/val_acc",
    "val/log_loss": "hp/val_log_loss",
    "test/f1_macro": "hp/test_f1",
    "test/accuracy": "hp/test_acc",
    "test/ece": "hp/test_ece",
    "epoch": "hp/epochs",
}


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
    """The finite final metrics under their ``hp/`` names."""
    return {
        hp: float(metrics[key])
        for key, hp in HP_METRICS.items()
        if key in metrics and math.isfinite(float(metrics[key]))
    }


def log_start(trainer: Trainer, params: Mapping[str, Any]) -> None:
    """Record the hyperparameters (``hparams.yaml``) before training."""
    for logger in trainer.loggers:
        logger.log_hyperparams(dict(params))


def log_final(trainer: Trainer, params: Mapping[str, Any], metrics: Mapping[str, float]) -> None:
    """Log the hyperparameters with their final ``hp/`` metrics (the HPARAMS tab's rows)."""
    values = hp_metrics(metrics)
    if not values:
        return
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.log_hyperparams(dict(params), metrics=values)
        else:  # other loggers have no hparams/metrics pairing: the values alone
            logger.log_metrics(values, step=trainer.global_step)
