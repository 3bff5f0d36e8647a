"""The sweep loop of ``ResumableOptunaSweeper`` (imported only when a sweep starts).

- **Resume**: the study is created with ``load_if_exists``; ``n_trials`` is the number of
  finished trials the study should reach, so running the same command again continues an
  interrupted sweep instead of starting over. Trials left ``RUNNING`` by a killed sweep are
  marked failed (user attr ``interrupted``) and their parameters are queued to run first.
  Job numbers equal trial numbers, so job folders never collide across runs.
- **Failures**: a trial that raises, or returns a non-finite or non-numeric value, is told
  to Optuna as failed (user attr ``error``) and the sweep goes on; it stops only when more
  than ``max_failure_rate`` of this run's trials failed, or when no trial of the study
  completed.
- **Guard**: the study remembers the sweep's overrides; resuming it with different ones is
  an error that says how to start a new study instead.

One sweep process per study at a time (a second one would see the first's trials as stale).
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from hydra.core.utils import JobReturn
from hydra_plugins.hydra_optuna_sweeper._impl import (
    OptunaSweeperImpl,
    create_params_from_overrides,
)
from omegaconf import OmegaConf
from optuna.trial import FrozenTrial, Trial, TrialState

log = logging.getLogger(__name__)

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
ARGUMENTS_ATTR = "sweep_overrides"


def trial_values(ret: JobReturn, n_objectives: int) -> tuple[list[float] | None, str | None]:
    """``(values, None)`` for a usable job result, ``(None, reason)`` otherwise."""
    try:
        value = ret.return_value  # re-raises the job's exception
    except Exception as error:  # any failure fails the trial
        return None, f"{type(error).__name__}: {error}"
    raw = value if n_objectives > 1 else [value]
    try:
        values = [float(v) for v in raw]
    except (TypeError, ValueError):
        return None, f"the job returned {value!r}, not {n_objectives} number(s)"
    if len(values) != n_objectives:
        return None, f"the job returned {len(values)} values for {n_objectives} objectives"
    if not all(math.isfinite(v) for v in values):
        return None, f"the objective is not finite: {values}"
    return values, None


def finished_count(trials: Sequence[FrozenTrial]) -> int:
    """Trials that count towards ``n_trials``: finished, and not interrupted (re-queued)."""
    return sum(t.state in FINISHED and not t.user_attrs.get("interrupted") for t in trials)


class ResumableOptunaSweeperImpl(OptunaSweeperImpl):
    """The sweep loop; see the module docstring."""

    def _sampler_seed(self) -> int | None:
        sampler_cfg = OmegaConf.select(self.config, "hydra.sweeper.sampler") or {}
        return sampler_cfg.get("seed")

    def _reseed_for_resume(self, offset: int) -> None:
        """A resumed sampler must not replay its first random draws: seed it with
        ``seed + offset`` (its own RNGs), or at random without a seed."""
        seed = self._sampler_seed()
        samplers = [self.sampler, getattr(self.sampler, "_random_sampler", None)]
        if seed is None:
            if hasattr(self.sampler, "reseed_rng"):
                self.sampler.reseed_rng()
            return
        for i, sampler in enumerate(s for s in samplers if s is not None):
            if hasattr(sampler, "_rng"):
                sampler._rng = np.random.RandomState((seed + offset + 7919 * i) % 2**32)

    def _requeue_interrupted(self, study: optuna.Study) -> int:
        """Fail the trials a killed sweep left running and queue their parameters again."""
        stale = [t for t in study.trials if t.state == TrialState.RUNNING]
        for trial in stale:
            study._storage.set_trial_user_attr(trial._trial_id, "interrupted", True)
            study._storage.set_trial_state(trial._trial_id, TrialState.FAIL)
            if trial.params:
                study.enqueue_trial(trial.params)
            log.warning(f"trial {trial.number} was interrupted: it will run again")
        return len(stale)

    def _check_same_sweep(self, study: optuna.Study, arguments: list[str]) -> None:
        stored = study.user_attrs.get(ARGUMENTS_ATTR)
        if stored is None:
            study.set_user_attr(ARGUMENTS_ATTR, arguments)
        elif sorted(stored) != sorted(arguments):
            gone, new = sorted(set(stored) - set(arguments)), sorted(set(arguments) - set(stored))
            raise ValueError(
                f"study '{study.study_name}' ({self.storage}) was started with other overrides: "
                f"this sweep lacks {gone} and adds {new}. Run the original command to resume "
                "it, or start a new study: hydra.sweeper.study_name=<new name>."
            )

    def _launch(self, trials: list[Trial], overrides: Sequence[Sequence[str]]) -> list[JobReturn]:
        """Launch the batch so that each job's number is its trial's number."""
        numbers = [t.number for t in trials]
        if numbers == list(range(numbers[0], numbers[0] + len(numbers))):
            return list(self.launcher.launch(overrides, initial_job_idx=numbers[0]))
        returns: list[JobReturn] = []
        for number, override in zip(numbers, overrides, strict=True):
            returns += self.launcher.launch([override], initial_job_idx=number)
        return returns

    def sweep(self, arguments: list[str]) -> None:
        if isinstance(self.sampler, functools.partial):  # GridSampler: the plugin's own loop
            return super().sweep(arguments)
        self._process_searchspace_config()
        params_conf = [*self._parse_sweeper_params_config(), *arguments]
        search_space, fixed_params = create_params_from_overrides(params_conf)
        if self.search_space_distributions:
            search_space = {**self.search_space_distributions, **search_space}
        for name in fixed_params:
            search_space.pop(name, None)
        directions = self._get_directions()

        Path(self.sweep_dir).mkdir(parents=True, exist_ok=True)  # the SQLite file lives there
        OmegaConf.save(self.config, Path(self.sweep_dir) / "multirun.yaml")  # as Hydra's sweeper
        study = optuna.create_study(
            study_name=self.study_name,
            storage=self.storage,
            sampler=self.sampler,
            directions=directions,
            load_if_exists=True,
        )
        self._check_same_sweep(study, params_conf)
        interrupted = self._requeue_interrupted(study)
        done = finished_count(study.trials)
        if study.trials:
            self._reseed_for_resume(len(study.trials))
            log.info(
                f"Resuming study '{study.study_name}': {done} of {self.n_trials} trials "
                f"finished, {interrupted} interrupted (re-queued)"
            )
        log.info(f"Study: {study.study_name}, storage: {self.storage}, directions: {directions}")

        ran = failed = 0
        while done + ran < self.n_trials:
            batch = min(self.n_trials - done - ran, self.n_jobs)
            trials = [study.ask() for _ in range(batch)]
            overrides = self._configure_trials(trials, search_space, fixed_params)
            returns = self._launch(trials, overrides)
            for trial, ret in zip(trials, returns, strict=True):
                values, error = trial_values(ret, len(directions))
                if error is None:
                    study.tell(trial, values if len(directions) > 1 else values[0])
                    continue
                failed += 1
                trial.set_user_attr("error", error[:1000])
                study.tell(trial, state=TrialState.FAIL)
                log.warning(f"trial {trial.number} failed ({error}); the sweep goes on")
            ran += batch
            if failed / ran > self.max_failure_rate:
                raise RuntimeError(
                    f"{failed} of {ran} trials failed (max_failure_rate="
                    f"{self.max_failure_rate}); see run_info.json in {self.sweep_dir}"
                )
        self._write_results(study, directions)

    def _write_results(self, study: optuna.Study, directions: list[str]) -> None:
        completed = [t for t in study.trials if t.state == TrialState.COMPLETE]
        if not completed:
            errors = [t.user_attrs.get("error") for t in study.trials if t.user_attrs.get("error")]
            raise RuntimeError(
                f"no trial of study '{study.study_name}' completed"
                + (f"; the first error: {errors[0]}" if errors else "")
            )
        if len(directions) > 1:
            results: dict[str, Any] = {
                "name": "optuna",
                "solutions": [{"params": t.params, "values": t.values} for t in study.best_trials],
            }
        else:
            best = study.best_trial
            results = {
                "name": "optuna",
                "best_trial": best.number,
                "best_params": best.params,
                "best_value": best.value,
            }
            log.info(f"Best trial: {best.number}, value {best.value}, params {best.params}")
        states = [t.state.name for t in study.trials]
        results["trials"] = {s: states.count(s) for s in sorted(set(states))}
        path = Path(self.sweep_dir) / "optimization_results.yaml"
        OmegaConf.save(OmegaConf.create(results), path)
