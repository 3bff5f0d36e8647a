"""Which sets are external to a model: the sources its run trained on (its
``environment.json``), the source a data config names, whether ``train=false`` scores a set as
an external one (``eval.external``), and the config of a source left out of merged training
(``eval.held_out``, what ``experiment=leave_one_source_out`` sweeps)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from braintumor.errors import UsageError
from braintumor.runs.layout import RunDir

log = logging.getLogger(__name__)


def data_source(data_cfg: DictConfig) -> str:
    """The source name of a data config: its ``source`` key (or the one of ``sources``), else
    its root folder's name."""
    sources = list(data_cfg.get("sources") or [])
    if len(sources) > 1:
        raise UsageError(
            f"an external set is scored one source at a time; data.sources names {sources}. "
            "Score each with data=<set> data.root=... (or data.sources=[<one>])."
        )
    return str(sources[0] if sources else data_cfg.get("source") or Path(str(data_cfg.root)).name)


def training_record(run: RunDir | None) -> dict[str, Any]:
    """The data config of the run a checkpoint was trained in (its ``environment.json``), or
    ``{}`` when the checkpoint lies outside a run folder."""
    if run is None or not run.environment.is_file():
        return {}
    config = json.loads(run.environment.read_text()).get("config") or {}
    return dict(config.get("data") or {})


def training_sources(record: dict[str, Any]) -> list[str]:
    """The sources a run trained on (``data.sources`` of a merged set, or ``data.source``)."""
    if record.get("sources"):
        return [str(s) for s in record["sources"]]
    return [str(record["source"])] if record.get("source") else []


def is_external(cfg: DictConfig, ckpt: str | Path) -> bool:
    """Whether ``train=false`` scores ``cfg.data`` as an external set of checkpoint ``ckpt``:
    ``eval.external`` true; or ``auto`` (the default) when the data names its source and the
    checkpoint's run recorded the sources it trained on, and they do not include it."""
    mode = (cfg.get("eval") or {}).get("external", "auto")
    if mode not in (True, False, "auto"):
        raise UsageError(f"eval.external must be true, false or auto, got {mode!r}.")
    if mode != "auto":
        return bool(mode)
    source = cfg.data.get("source")
    trained_on = training_sources(training_record(RunDir.of_checkpoint(ckpt)))
    return bool(source) and bool(trained_on) and source not in trained_on


def leave_source_out(cfg: DictConfig) -> DictConfig:
    """``eval.held_out=<source>`` of a merged set: the config that trains on ``data.sources``
    without it, and scores it after training as an external set (``eval.external_data``: the
    same data settings, that source alone). ``cfg`` as it is without ``eval.held_out``."""
    held = (cfg.get("eval") or {}).get("held_out")
    if not held:
        return cfg
    sources = [str(s) for s in cfg.data.get("sources") or []]
    if held not in sources or len(sources) < 2:
        raise UsageError(
            f"eval.held_out={held} leaves a source of a merged set out of training: it needs "
            f"data=merged with data.sources naming it and at least one other (got {sources})."
        )
    cfg = cfg.copy()
    with open_dict(cfg):
        external = OmegaConf.create(OmegaConf.to_container(cfg.data, resolve=True))
        external.sources = [held]
        cfg.data.sources = [s for s in sources if s != held]
        cfg.eval.external_data = external
    log.info(f"leaving {held} out: training on {list(cfg.data.sources)}, then scoring {held}")
    return cfg
