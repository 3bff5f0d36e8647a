"""The Hydra callback that writes the sweep report when a multirun ends
(``conf/hydra/default.yaml``). Hydra creates it before every run, multirun or not, so this
module imports nothing heavy: the report (numpy, matplotlib, torch metrics) is imported only
when a multirun ends."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

log = logging.getLogger("braintumor.sweeps.report")


class SweepReportCallback(Callback):
    """Hydra callback: write the sweep report when a multirun ends (never fails the sweep)."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        try:
            from braintumor.sweeps.report import write_sweep_report

            result = write_sweep_report(sweep_dir)
        except Exception as error:  # a report never fails a sweep
            log.warning(f"no sweep report for {sweep_dir}: {type(error).__name__}: {error}")
            return
        log.info(f"Sweep report: {result['table']} (best job: {result['best_job']})")
        if result["seed_summary"]:
            log.info(f"Seed summary: {result['seed_summary']}")
        if result["cv_summary"]:
            log.info(f"Cross-validation: {result['cv_summary']}")
