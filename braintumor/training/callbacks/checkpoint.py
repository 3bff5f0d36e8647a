"""``RunCheckpoint``: Lightning's ``ModelCheckpoint`` that keeps its best checkpoints when a
run is resumed into a new run directory."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_only

from braintumor.atomic import copy_atomically
from braintumor.vocabulary import current_name

log = logging.getLogger(__name__)


class RunCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` whose state survives a resume into another folder.

    Lightning's own forgets the best score and the best checkpoints it tracks when the
    checkpoint it resumes from was saved in another ``dirpath`` (``ckpt_path=<old run>/...``
    with a new run directory): the first epoch after the resume then counts as the best, and
    the run is evaluated on other weights than the uninterrupted run would be. Here the
    tracked checkpoints are copied into the new folder and the whole state is restored, so a
    run resumed anywhere ends as it would have without the interruption. If one of them is
    gone from the old folder, Lightning's behaviour (and warning) is kept.
    """

    def on_load_checkpoint(self, trainer: Any, pl_module: Any, checkpoint: dict[str, Any]) -> None:
        """A checkpoint saved before the metric names were unified filed the callbacks' states
        under their monitor's old name (``val/f1``): they are filed under the current one
        (``val/f1_macro``, the same number), so the best score and early stopping's patience
        survive the resume. (Lightning's warning about the old names still shows.)"""
        states = checkpoint.get("callbacks") or {}
        for key in [k for k in states if isinstance(k, str)]:
            renamed = re.sub(
                r"'monitor': '([^']*)'", lambda m: f"'monitor': '{current_name(m[1])}'", key
            )
            if renamed != key and renamed not in states:
                state = states[key]
                if isinstance(state, dict) and "monitor" in state:
                    state = {**state, "monitor": current_name(state["monitor"])}
                states[renamed] = state
                log.info(f"the checkpoint's {key} state is restored as {renamed}")

    @property
    def state_key(self) -> str:
        # Lightning's own key: checkpoints stay interchangeable with plain ModelCheckpoint
        return "ModelCheckpoint" + super().state_key.removeprefix(type(self).__qualname__)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        old = state_dict.get("dirpath")
        if not old or not self.dirpath or os.path.realpath(old) == os.path.realpath(self.dirpath):
            super().load_state_dict(state_dict)
            return
        new = Path(self.dirpath)
        tracked = [Path(p) for p in state_dict.get("best_k_models", {})]
        carried = {str(p): str(new / p.name) for p in tracked if p.parent == Path(old)}
        missing = [p for p in carried if not Path(p).is_file()]
        if missing:
            log.warning(f"cannot carry {missing} over to {new}: not found")
            super().load_state_dict(state_dict)
            return
        if rank_zero_only.rank == 0:
            for source, target in carried.items():
                copy_atomically(Path(source), Path(target))
            if carried:
                log.info(f"carried the best checkpoint(s) of {old} over: {list(carried.values())}")
        moved = {
            "dirpath": self.dirpath,
            "best_k_models": {carried.get(k, k): v for k, v in state_dict["best_k_models"].items()},
        }
        for key in ("best_model_path", "kth_best_model_path"):
            moved[key] = carried.get(state_dict.get(key, ""), state_dict.get(key, ""))
        super().load_state_dict({**state_dict, **moved})
