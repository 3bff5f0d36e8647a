"""``InterruptCheckpoint``: SIGTERM or Ctrl+C saves a checkpoint before the run exits."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Checkpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException

log = logging.getLogger(__name__)


class InterruptCheckpoint(Checkpoint):
    """Saves ``<dirpath>/<filename>.ckpt`` when the run is stopped by SIGTERM (pre-emption,
    ``kill``, a scheduler's time limit) or SIGINT (Ctrl+C), at the end of the step in progress.

    Errors (a NaN loss, a bug) save nothing: their weights are not worth resuming from. The
    file is removed when a later run resumed from it finishes. (Lightning's own
    ``OnExceptionCheckpoint`` is not used: its presence turns every ``fit`` into a silent
    resume from whatever checkpoint the folder holds.)
    """

    def __init__(self, dirpath: str | Path, filename: str = "interrupted") -> None:
        self.dirpath = Path(dirpath)
        self.filename = filename

    @property
    def ckpt_path(self) -> Path:
        return self.dirpath / f"{self.filename}.ckpt"

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        if trainer.state.fn != "fit" or not isinstance(
            exception, (SIGTERMException, KeyboardInterrupt)
        ):
            return
        trainer.save_checkpoint(self.ckpt_path)
        log.warning(
            f"interrupted at epoch {trainer.current_epoch}, step {trainer.global_step}: saved "
            f"{self.ckpt_path}; resume with ckpt_path={self.ckpt_path} (or ckpt_path=last and "
            "the same hydra.run.dir)."
        )

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.is_global_zero and self.ckpt_path.is_file():  # finished: nothing to resume
            self.ckpt_path.unlink()
