"""Optuna pruning: in an Optuna sweep, report ``val/f1_macro`` after every validation epoch to
the job's trial and stop the run when the study's pruner says it is hopeless.

Sound under DDP: only rank 0 talks to the study; its decision is broadcast, and every rank
stops after the same epoch. A pruned run ends normally (its best checkpoint is tested and
reported), and says so in ``run_info.json`` (``pruned``: epoch, value, trial), in
``reports/optuna_trial.json`` (every value reported) and in its checkpoints (this callback's
state). The sweeper reads the trial's ``pruned_at_epoch`` attribute and tells it PRUNED.
Outside an Optuna sweep (or with ``hparams_search.pruner=none``) it only reports nothing.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lightning.pytorch import Callback, LightningModule, Trainer

from braintumor.atomic import write_atomically
from braintumor.runs.layout import RunDir
from braintumor.runs.record import read_run_info, write_run_info
from braintumor.sweeps.study import PRUNED_ATTR

if TYPE_CHECKING:
    import optuna

log = logging.getLogger(__name__)

SWEEPER = "hydra_plugins.braintumor_optuna.sweeper.ResumableOptunaSweeper"


def sweep_trial() -> dict[str, Any] | None:
    """This job's study and trial from Hydra's config, when it runs in an Optuna sweep of
    ours: ``{storage, study_name, trial_number, pruner, pruners}``; else ``None``."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    if not HydraConfig.initialized():
        return None
    hc = HydraConfig.get()
    sweeper = hc.sweeper
    in_sweep = getattr(hc.mode, "name", None) == "MULTIRUN" and hc.job.get("num") is not None
    if not in_sweep or (sweeper or {}).get("_target_") != SWEEPER:
        return None
    return {"storage": str(sweeper.storage), "study_name": str(sweeper.study_name),
            "trial_number": int(hc.job.num), "pruner": str(sweeper.pruner),
            "pruners": OmegaConf.to_container(sweeper.pruners, resolve=True)}  # fmt: skip


class OptunaPruning(Callback):
    """Report ``monitor`` per epoch to the sweep's Optuna trial; stop a pruned run.

    The study and trial come from Hydra's sweeper config (trial number = job number) unless
    given; ``run_dir`` is where ``run_info.json`` and ``reports/`` are written.
    """

    def __init__(self, monitor: str = "val/f1_macro", run_dir: str | Path | None = None,
                 trial: dict[str, Any] | None = None) -> None:  # fmt: skip
        self.monitor = monitor
        self.run_dir = Path(run_dir) if run_dir else None
        if trial is not None and not isinstance(trial, dict):  # a DictConfig from Hydra
            from omegaconf import OmegaConf

            trial = OmegaConf.to_container(trial, resolve=True)
        # found now, in the process Hydra started (spawned DDP processes have no Hydra config)
        self.trial_spec = trial or sweep_trial()
        self.study: optuna.Study | None = None
        self.trial_id: int | None = None
        self.reported: dict[int, float] = {}
        self.pruned_at_epoch: int | None = None
        self._warned = False

    @property
    def state_key(self) -> str:
        return "OptunaPruning"

    def state_dict(self) -> dict[str, Any]:
        spec = self.trial_spec or {}
        return {"study_name": spec.get("study_name"), "trial_number": spec.get("trial_number"),
                "pruned_at_epoch": self.pruned_at_epoch}  # fmt: skip

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if stage != "fit" or not trainer.is_global_zero or trainer.fast_dev_run:
            return
        if self.trial_spec is None or self.study is not None:
            return
        import optuna

        from braintumor.sweeps.study import build_pruner, open_storage

        spec = self.trial_spec
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        storage = open_storage(spec["storage"])
        pruner = build_pruner(spec.get("pruner", "none"), spec.get("pruners") or {"none": {
            "_target_": "optuna.pruners.NopPruner"}})  # fmt: skip
        self.study = optuna.load_study(study_name=spec["study_name"], storage=storage,
                                       pruner=pruner)  # fmt: skip
        self.trial_id = storage.get_trial_id_from_study_id_trial_number(
            self.study._study_id, spec["trial_number"]
        )

    def _judge(self, trainer: Trainer) -> bool:
        """Rank 0: report this epoch's value; whether the pruner stops the trial."""
        if self.study is None or self.trial_id is None:
            return False
        value = trainer.callback_metrics.get(self.monitor)
        if value is None or not math.isfinite(float(value)):
            if not self._warned:
                log.warning(f"pruning: no finite {self.monitor} to report this epoch")
                self._warned = True
            return False
        epoch, storage = trainer.current_epoch, self.study._storage
        self.reported[epoch] = float(value)
        storage.set_trial_intermediate_value(self.trial_id, epoch, float(value))
        prune = bool(self.study.pruner.prune(self.study, storage.get_trial(self.trial_id)))
        if prune:
            storage.set_trial_user_attr(self.trial_id, PRUNED_ATTR, epoch)
        self._write_report(prune)
        return prune

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking or trainer.fast_dev_run:
            return
        prune = self._judge(trainer) if trainer.is_global_zero else False
        prune = bool(trainer.strategy.broadcast(prune, src=0))  # every rank stops together
        if not prune:
            return
        self.pruned_at_epoch = trainer.current_epoch
        trainer.should_stop = True
        if trainer.is_global_zero:
            self._record_in_run_info()
            value = self.reported.get(trainer.current_epoch)
            log.info(f"Optuna pruned this trial after epoch {trainer.current_epoch} "
                     f"({self.monitor} {value:.4f})")  # fmt: skip

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.study is not None and self.pruned_at_epoch is None:
            self._write_report(False, "trained to the end")

    def _write_report(self, pruned: bool, state: str = "running") -> None:
        if self.run_dir is None:
            return
        state = "pruned" if pruned else state
        from braintumor.sweeps.study import redact

        spec = self.trial_spec or {}
        report = {"study_name": spec.get("study_name"), "storage": redact(spec.get("storage", "")),
                  "trial": spec.get("trial_number"), "pruner": spec.get("pruner"),
                  "monitor": self.monitor, "state": state,
                  "pruned_at_epoch": max(self.reported) if pruned else None,
                  "reported": {str(k): v for k, v in sorted(self.reported.items())}}  # fmt: skip
        write_atomically(RunDir(self.run_dir).reports / "optuna_trial.json",
                         json.dumps(report, indent=2) + "\n")  # fmt: skip

    def _record_in_run_info(self) -> None:
        if self.run_dir is None or read_run_info(self.run_dir) is None:
            return
        info = read_run_info(self.run_dir) or {}
        epoch = self.pruned_at_epoch
        info["pruned"] = {"epoch": epoch, "value": self.reported.get(epoch),
                          "monitor": self.monitor,
                          "trial": (self.trial_spec or {}).get("trial_number")}  # fmt: skip
        write_run_info(self.run_dir, info)
