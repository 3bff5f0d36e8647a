"""``ResumableOptunaSweeper``: hydra-optuna-sweeper's sweeper, made resumable and tolerant of
failed trials (the loop is in :mod:`._impl`, imported only when a sweep starts, so that
Hydra's start-up, which imports every plugin module, stays fast)."""

from __future__ import annotations

import logging
from typing import Any

from hydra_plugins.hydra_optuna_sweeper.optuna_sweeper import OptunaSweeper


class ResumableOptunaSweeper(OptunaSweeper):
    """``hydra/sweeper=optuna_resumable``: the Optuna sweeper with resume and failure
    tolerance; same options as ``hydra/sweeper=optuna``."""

    def __init__(self, **options: Any) -> None:
        logging.getLogger("alembic").setLevel(logging.WARNING)  # optuna's schema chatter
        from hydra_plugins.braintumor_optuna._impl import ResumableOptunaSweeperImpl

        self.sweeper = ResumableOptunaSweeperImpl(**options)
