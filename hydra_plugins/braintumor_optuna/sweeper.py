"""``ResumableOptunaSweeper`` (``hydra/sweeper=optuna_resumable``): a Hydra sweeper on Optuna
>= 4 with resume, failure tolerance, pruning and many workers per study. The loop is in
:mod:`._loop`, imported only when a sweep starts, so that Hydra's start-up (which imports
every plugin module) stays fast."""

from __future__ import annotations

import importlib.util
import logging
import os
from typing import Any

from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


class ResumableOptunaSweeper(Sweeper):
    """Options: see :class:`hydra_plugins.braintumor_optuna.config.ResumableOptunaSweeperConf`."""

    def __init__(
        self,
        sampler: Any,
        direction: Any,
        storage: str | None,
        study_name: str | None,
        n_trials: int,
        n_jobs: int,
        max_failure_rate: float,
        params: Any = None,
        pruner: str = "none",
        pruners: Any = None,
        heartbeat_interval: int = 30,
        grace_period: int = 180,
    ) -> None:
        if not 0.0 <= max_failure_rate <= 1.0:
            raise ValueError(f"hydra.sweeper.max_failure_rate={max_failure_rate}: give 0..1.")
        if not storage or not study_name:
            raise ValueError("hydra.sweeper.storage and hydra.sweeper.study_name are needed.")
        self.sampler, self.direction, self.storage = sampler, direction, storage
        self.study_name, self.n_trials, self.n_jobs = study_name, n_trials, max(1, n_jobs)
        self.max_failure_rate, self.params = max_failure_rate, params
        self.pruner, self.pruners = pruner, pruners or {}
        self.heartbeat_interval, self.grace_period = heartbeat_interval, grace_period
        logging.getLogger("alembic").setLevel(logging.WARNING)  # optuna's schema chatter
        if importlib.util.find_spec("hydra_plugins.hydra_optuna_sweeper") is not None:
            logging.getLogger(__name__).warning(
                "the old hydra-optuna-sweeper plugin is installed: its sampler configs may "
                "shadow ours (hydra/sweeper/sampler). Remove it: pip uninstall hydra-optuna-sweeper"
            )

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction,
              config: DictConfig) -> None:  # fmt: skip
        self.config = config
        self.hydra_context = hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            config=config, hydra_context=hydra_context, task_function=task_function
        )

    def sweep(self, arguments: list[str]) -> Any:
        from hydra_plugins.braintumor_optuna._loop import sweep

        rank = os.environ.get("LOCAL_RANK", "0")
        if rank != "0":  # Lightning's ddp launcher re-ran the sweep's command for another rank
            raise RuntimeError(
                f"this Optuna sweep was started again for DDP rank {rank} by Lightning's ddp "
                "launcher, which cannot run inside a Hydra multirun. Run multi-device trials "
                "with a launcher that starts each rank (hydra/launcher=slurm "
                "hydra.launcher.tasks_per_node=N trainer=ddp trainer.devices=N), or one "
                "device per trial (trainer=gpu) and several sweep workers (docs/sweeps.md)."
            )

        return sweep(self, arguments)
