"""The settings objects of a run, made from the composed config once and passed down: nothing
below :mod:`braintumor.pipeline` reads the config itself."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import DictConfig, OmegaConf

from braintumor.data.parameters import default_num_workers
from braintumor.evaluation.settings import EvaluationSettings


def evaluation_settings(cfg: DictConfig) -> EvaluationSettings:
    """The ``eval.*`` settings of a run (``conf/eval/default.yaml``), checked once."""
    values = OmegaConf.to_container(cfg.eval, resolve=True)
    return EvaluationSettings.from_config(values, cfg.get("seed"))


@dataclass(frozen=True)
class ScoringLoader:
    """How the images of a set scored outside the Trainer are loaded (``data.*`` keys)."""

    batch_size: int
    workers: int  # loader processes decoding the images (data.num_workers)
    multiprocessing_context: str | None


def scoring_loader(data_cfg: DictConfig) -> ScoringLoader:
    """The loader settings of ``data_cfg`` (``num_workers=null``: the machine's default)."""
    workers = data_cfg.get("num_workers")
    return ScoringLoader(
        batch_size=int(data_cfg.batch_size),
        workers=default_num_workers() if workers is None else int(workers),
        multiprocessing_context=data_cfg.get("multiprocessing_context"),
    )
