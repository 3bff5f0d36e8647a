"""Hyperparameters of a run as a person chose them: the config groups, the keys set on the
command line or by a sweeper, and the headline keys of ``hparams`` in ``conf/train.yaml``;
and the keys that tell the runs of a sweep apart (TensorBoard's HPARAMS tab marks them).
Read from the composed config and Hydra's own record of the run."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

# config groups that pick machinery, not a model or its data (left out of the hparams)
NOT_HYPERPARAMETERS = ("hydra", "paths", "logger", "callbacks", "hparams_search", "hparams")
# words of keys whose values are places or classes, not choices (data.root, paths.cache_dir,
# model.net.weights_path, _target_), left out besides Hydra's override_dirname.exclude_keys
PLACE_WORDS = ("root", "dir", "path", "file", "cache", "target")


def _is_place(key: str) -> bool:
    return any(w in PLACE_WORDS for part in key.split(".") for w in part.split("_"))


def _override_keys(excluded: Sequence[str]) -> list[str]:
    """The keys set on the command line (or by a sweeper), as ``a.b.c`` or a group name."""
    keys = []
    for override in HydraConfig.get().overrides.task:
        key = override.split("=", 1)[0].lstrip("+~")
        if key.split(".")[0].split("/")[0] in NOT_HYPERPARAMETERS or key in excluded:
            continue
        if not _is_place(key):
            keys.append(key)
    return keys


def command_line_keys() -> list[str]:
    """The keys set on the command line or by a sweeper (what tells the runs of a sweep
    apart), less paths and Hydra's ``override_dirname.exclude_keys``; a group as its name."""
    if not HydraConfig.initialized():
        return []
    excluded = HydraConfig.get().job.config.override_dirname.exclude_keys or []
    return _override_keys(list(excluded))


def swept_keys() -> list[str]:
    """The keys a multirun varies between its jobs: its sweeper's ``params`` (an Optuna search
    space) and the command line's sweeps (``lr=0.001,0.003``, ``choice(...)``, read from the
    sweep's ``multirun.yaml``); ``[]`` outside a multirun."""
    if not HydraConfig.initialized():
        return []
    hydra = HydraConfig.get()
    if hydra.mode is None or hydra.mode.name != "MULTIRUN":
        return []
    keys = [str(k) for k in (hydra.sweeper.get("params") or {})]
    multirun = Path(hydra.runtime.output_dir).parent / "multirun.yaml"
    if multirun.is_file():
        parser = OverridesParser.create()
        for text in OmegaConf.load(multirun).hydra.overrides.task:
            override = parser.parse_override(text)
            if override.is_sweep_override():
                keys.append(override.key_or_group)
    return [k for k in dict.fromkeys(keys) if not _is_place(k)]


def _value(value: Any) -> Any:
    """A value TensorBoard's HPARAMS tab can show (numbers, text, booleans)."""
    if OmegaConf.is_config(value):
        value = OmegaConf.to_container(value, resolve=True)
    return value if isinstance(value, (bool, int, float, str)) else str(value)


def run_hparams(cfg: DictConfig) -> dict[str, Any]:
    """The hyperparameters a person set or swept: the chosen config groups (``model``,
    ``data``, ``experiment``, ...), every key set on the command line or by a sweeper (less
    paths and Hydra's ``override_dirname.exclude_keys``), and the keys listed in ``hparams``
    (``model.optimizer.lr``, ``data.batch_size``, ...; those the config lacks are left out).
    No ``_target_``, no folders."""
    params: dict[str, Any] = {}
    keys = [str(k) for k in cfg.get("hparams") or []]
    overridden: list[str] = []
    if HydraConfig.initialized():
        hydra = HydraConfig.get()
        for group, choice in hydra.runtime.choices.items():
            if choice is not None and group.split("/")[0] not in NOT_HYPERPARAMETERS:
                params[group] = choice
        overridden = command_line_keys()
        keys = [*keys, *(k for k in overridden if k not in keys)]
    for key in keys:
        if key in params:  # a config group
            continue
        value = OmegaConf.select(cfg, key, default=None, throw_on_missing=False)
        if value is not None or key in overridden:  # a listed key the config lacks: no column
            params[key] = "null" if value is None else _value(value)
    return params


def differing_keys() -> list[str]:
    """The keys a sweep varies; in a single run, those its command line set."""
    return swept_keys() or command_line_keys()
