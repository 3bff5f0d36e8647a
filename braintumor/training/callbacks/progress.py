"""The epoch progress bar: the metrics a person watches, in 80 columns, or plain lines."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Mapping
from typing import Any

from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.callbacks.progress.tqdm_progress import Tqdm
from lightning.pytorch.utilities import rank_zero_only

from braintumor.console import is_terminal

log = logging.getLogger(__name__)

SHOWN = {"val/f1": "val/f1_macro", "val/loss": "val/loss", "loss": "train/loss"}


class _Bar(Tqdm):
    """Lightning's bar with ``name value`` pairs (no ``name=value, `` padding)."""

    def set_postfix(self, ordered_dict: Mapping | None = None, refresh: bool = True, **kw) -> None:
        items = {**(ordered_dict or {}), **kw}
        self.set_postfix_str("  ".join(f"{k} {self.format_num(v)}" for k, v in items.items()),
                             refresh=refresh)  # fmt: skip


class EpochProgressBar(TQDMProgressBar):
    """Lightning's tqdm bars, narrowed to what a person watches.

    The epoch bar shows ``metrics`` (shown name -> logged name, e.g. ``val/f1`` ->
    ``val/f1_macro``) in that order and nothing else (no ``v_num``), and no iteration rate, so
    that it fits 80 columns. When stdout is not a terminal (``plain=None``; a log file, a pipe,
    a batch job) there are no bars at all: one plain line per epoch is logged instead.
    """

    BAR_FORMAT = "{desc}|{bar}| {n_fmt}/{total_fmt} {elapsed}<{remaining}{postfix}"

    def __init__(
        self,
        metrics: Mapping[str, str] | None = None,
        plain: bool | None = None,
        refresh_rate: int = 1,
        leave: bool = False,
    ) -> None:
        super().__init__(refresh_rate=refresh_rate, leave=leave)
        self.metrics = dict(SHOWN if metrics is None else metrics)
        self.plain = not is_terminal() if plain is None else plain
        self._epoch_started = time.monotonic()
        self._finished: tuple[int, float] | None = None  # (epoch, seconds) not yet logged
        if self.plain:
            self.disable()

    def get_metrics(self, trainer: Trainer, pl_module: LightningModule) -> dict[str, Any]:
        """The logged values of ``metrics`` under their shown names (those logged so far)."""
        logged = trainer.progress_bar_metrics
        return {shown: logged[key] for shown, key in self.metrics.items() if key in logged}

    def init_train_tqdm(self) -> Tqdm:
        return _Bar(
            desc=self.train_description, position=2 * self.process_position,
            disable=self.is_disabled, leave=True, dynamic_ncols=True, file=sys.stdout,
            smoothing=0, bar_format=self.BAR_FORMAT,
        )  # fmt: skip

    def on_train_epoch_start(self, trainer: Trainer, *args: Any) -> None:
        self._log_finished_epoch(trainer)
        self._epoch_started = time.monotonic()
        super().on_train_epoch_start(trainer, *args)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        # the module logs train/loss after the callbacks' epoch end: the line waits for it
        self._finished = (trainer.current_epoch, time.monotonic() - self._epoch_started)

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        super().on_train_end(trainer, pl_module)
        self._log_finished_epoch(trainer)

    @rank_zero_only
    def _log_finished_epoch(self, trainer: Trainer) -> None:
        """Plain mode: ``Epoch 3  val/f1 0.912  val/loss 0.381  loss 0.412  (5.1 s)``."""
        if not self.plain or self._finished is None:
            return
        (epoch, seconds), self._finished = self._finished, None
        logged = trainer.progress_bar_metrics
        shown = "".join(
            f"  {name} {logged[key]:.4f}" for name, key in self.metrics.items() if key in logged
        )
        log.info(f"Epoch {epoch}{shown}  ({seconds:.1f} s)")
