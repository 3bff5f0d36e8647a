"""The ``hydra/sweeper=optuna_resumable`` config and its samplers (``hydra/sweeper/sampler=
tpe|random|grid``). Pruners are named in ``pruners`` and chosen by ``pruner``."""

# No `from __future__ import annotations`: Hydra executes plugin modules before registering
# them in sys.modules, and dataclasses then cannot resolve string annotations.
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


@dataclass
class TPESamplerConf:
    _target_: str = "optuna.samplers.TPESampler"
    seed: int | None = None
    n_startup_trials: int = 10
    n_ei_candidates: int = 24
    multivariate: bool = False
    constant_liar: bool = True  # parallel workers: running trials count as (bad) results


@dataclass
class RandomSamplerConf:
    _target_: str = "optuna.samplers.RandomSampler"
    seed: int | None = None


@dataclass
class GridSamplerConf:
    """Every combination of the ``choice``/``range`` params, in random order."""

    _target_: str = "optuna.samplers.GridSampler"
    _partial_: bool = True  # the search space comes from the params
    seed: int | None = None


def _no_pruner() -> dict[str, Any]:
    return {"none": {"_target_": "optuna.pruners.NopPruner"}}


@dataclass
class ResumableOptunaSweeperConf:
    """``n_trials`` counts the study's trials across every run and worker; failed trials
    never stop the sweep by default (``max_failure_rate: 1.0``). ``storage``: an RDB URL or a
    journal file (braintumor.sweeps.study). A worker's trial whose heartbeat is older than
    ``grace_period`` seconds (or whose process on this host is gone) is failed and re-run."""

    _target_: str = "hydra_plugins.braintumor_optuna.sweeper.ResumableOptunaSweeper"
    defaults: list[Any] = field(default_factory=lambda: [{"sampler": "tpe"}])
    sampler: Any = MISSING
    direction: Any = "minimize"
    storage: str | None = None
    study_name: str | None = None
    n_trials: int = 20
    n_jobs: int = 1
    max_failure_rate: float = 1.0
    params: dict[str, str] | None = None
    pruner: str = "none"
    pruners: dict[str, Any] = field(default_factory=_no_pruner)
    heartbeat_interval: int = 30
    grace_period: int = 180


store = ConfigStore.instance()
store.store(group="hydra/sweeper", name="optuna_resumable", node=ResumableOptunaSweeperConf,
            provider="braintumor")  # fmt: skip
for name, node in (("tpe", TPESamplerConf), ("random", RandomSamplerConf),
                   ("grid", GridSamplerConf)):  # fmt: skip
    store.store(group="hydra/sweeper/sampler", name=name, node=node, provider="braintumor")
