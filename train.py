"""Train, or evaluate, a brain-MRI classifier: ``python train.py [overrides]``.

Examples::

    python train.py                                     # default CNN on the demo data
    python train.py data=folder data.root=/data/brain44c model.optimizer.lr=3e-4
    python train.py -m model.optimizer.lr=1e-3,3e-4     # grid multirun
    python train.py -m hparams_search=cnn_optuna        # Optuna search (resumable)
    python train.py train=false ckpt_path=outputs/.../checkpoints/last.ckpt   # evaluate
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import NoReturn

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import CompactHydraException
from omegaconf import DictConfig

from braintumor.errors import BraintumorError, fail, one_line
from braintumor.pipeline.config_check import check_command_line, check_config
from braintumor.resolvers import register_resolvers

register_resolvers()  # before Hydra composes: `--cfg job --resolve` needs ${run_name:...}
CONF_DIR = Path(__file__).resolve().parent / "conf"
log = logging.getLogger("braintumor.train")


def refuse(error: BraintumorError) -> NoReturn:
    """A mistake the user can fix: one line on stderr and exit code 2, no traceback
    (:func:`~braintumor.errors.fail`; ``HYDRA_FULL_ERROR=1`` shows it)."""
    if os.environ.get("HYDRA_FULL_ERROR") == "1":
        raise error
    fail(error)


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Run the pipeline and return the optimized metric (for Hydra sweepers).

    Every run records its status, wall time, overrides and metrics in ``run_info.json``.
    The config and the paths it names are checked first, before torch is imported.
    """
    multirun = HydraConfig.get().mode.name == "MULTIRUN"
    try:
        check_config(cfg, HydraConfig.get().runtime.choices)
    except BraintumorError as error:
        refuse(error)
    logging.captureWarnings(True)  # warnings through the log: above the bars, into train.log
    if cfg.get("malloc_tuning"):
        from braintumor.runs.allocator import tune_malloc

        tune_malloc()
    from lightning.pytorch.utilities import rank_zero_only

    # imported here so that `--help` and `--cfg` stay fast
    from braintumor.pipeline.evaluate import evaluate
    from braintumor.pipeline.train import train
    from braintumor.runs.record import recorded_run

    run = train if cfg.get("train", True) else evaluate
    job = HydraConfig.get().job
    overrides = list(HydraConfig.get().overrides.task)
    num = job.get("num") if multirun else None
    try:
        if rank_zero_only.rank != 0:  # another process of a multi-process run: rank 0 records
            return run(cfg).get(cfg.get("optimized_metric") or "")
        run_dir = Path(cfg.paths.output_dir)
        with recorded_run(run_dir, overrides, cfg.get("optimized_metric"), num, cfg.train) as rec:
            return rec.finish(run(cfg))
    except BraintumorError as error:
        if not multirun or os.environ.get("HYDRA_FULL_ERROR") == "1":
            refuse(error)
        # the sweeper records the failed job and goes on with the others; Hydra prints a
        # CompactHydraException at the end of the sweep as its message alone
        log.error(one_line(error))
        raise CompactHydraException(one_line(error)) from error


if __name__ == "__main__":
    try:
        check_command_line(sys.argv[1:], CONF_DIR)  # before Hydra: `model=typo` in one line
    except BraintumorError as command_line_error:
        refuse(command_line_error)
    main()
