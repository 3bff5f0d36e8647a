"""The ``hydra/sweeper=optuna_resumable`` config: the Optuna sweeper's, other defaults."""

from dataclasses import dataclass

from hydra.core.config_store import ConfigStore
from hydra_plugins.hydra_optuna_sweeper.config import OptunaSweeperConf


@dataclass
class ResumableOptunaSweeperConf(OptunaSweeperConf):
    """Like ``hydra/sweeper=optuna``; ``n_trials`` counts the study's trials across runs, one
    worker at a time, and failed trials never stop the sweep (``max_failure_rate: 1.0``)."""

    _target_: str = "hydra_plugins.braintumor_optuna.sweeper.ResumableOptunaSweeper"
    n_jobs: int = 1
    max_failure_rate: float = 1.0


ConfigStore.instance().store(
    group="hydra/sweeper",
    name="optuna_resumable",
    node=ResumableOptunaSweeperConf,
    provider="braintumor",
)
