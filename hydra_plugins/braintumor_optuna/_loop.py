"""The sweep loop of ``ResumableOptunaSweeper`` (imported only when a sweep starts).

- **One study, any number of workers**: every worker runs the same command on one storage
  (:mod:`braintumor.sweeps.study`); a worker asks Optuna for a trial, launches its job (job
  number = trial number, so job folders never collide) and tells the result, until the study
  holds ``n_trials`` finished trials. A worker with nothing left to ask waits for the others'
  running trials, to re-run any whose worker dies (:mod:`._workers`).
- **Resume**: the same command again continues the study; a trial cut off by a kill is failed
  (``interrupted``) and its parameters run again first.
- **Pruning**: a job's :class:`~braintumor.training.callbacks.OptunaPruning` reports
  ``val/f1_macro`` per epoch and marks the trial ``pruned``; the trial is told PRUNED.
- **Failures**: a trial that raises, or returns a non-finite or non-numeric value, is told
  FAIL (user attr ``error``) and the sweep goes on, until more than ``max_failure_rate`` of
  this worker's trials failed.
- **Guard**: the study remembers the sweep's overrides; another set is refused.
- **Seeds**: with ``sampler.seed``, the sampler is seeded per trial from the seed and the
  trial number, so workers draw different parameters and a resumed sweep new ones.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
from hydra.core.utils import JobReturn
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import Trial, TrialState

from braintumor.atomic import write_atomically
from braintumor.sweeps.study import (
    PRUNED_ATTR,
    build_pruner,
    open_storage,
    redact,
    write_study_file,
)
from hydra_plugins.braintumor_optuna._search_space import grid, search_space
from hydra_plugins.braintumor_optuna._workers import (
    SURPLUS,
    claim,
    counts,
    finished_count,
    heartbeat,
    requeue_dead,
)

if TYPE_CHECKING:
    from hydra_plugins.braintumor_optuna.sweeper import ResumableOptunaSweeper

log = logging.getLogger(__name__)

ARGUMENTS_ATTR = "sweep_overrides"
WAIT_S = 5.0  # how often an idle worker looks at the others' trials


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


def suggest(trial: Trial, space: dict[str, BaseDistribution]) -> dict[str, Any]:
    """Draw the trial's parameters (enqueued trials get their queued values)."""
    for name, dist in space.items():
        if isinstance(dist, CategoricalDistribution):
            trial.suggest_categorical(name, dist.choices)
        elif isinstance(dist, IntDistribution):
            trial.suggest_int(name, dist.low, dist.high, step=dist.step, log=dist.log)
        elif isinstance(dist, FloatDistribution):
            trial.suggest_float(name, dist.low, dist.high, step=dist.step, log=dist.log)
    return dict(trial.params)


class SweepLoop:
    """One worker's sweep over one study; see the module docstring."""

    def __init__(self, sweeper: ResumableOptunaSweeper, arguments: list[str]) -> None:
        self.sweeper = sweeper
        self.config: DictConfig = sweeper.config
        self.sweep_dir = Path(self.config.hydra.sweep.dir)
        self.params_conf = [f"{k}={v}" for k, v in (sweeper.params or {}).items()]
        self.params_conf += arguments
        self.space, self.fixed = search_space(self.params_conf)
        for name in self.fixed:
            self.space.pop(name, None)
        direction = sweeper.direction
        self.directions = [str(d) for d in direction] if OmegaConf.is_list(direction) or \
            isinstance(direction, list) else [str(direction)]  # fmt: skip
        self.n_trials = sweeper.n_trials
        self.grid = None
        # the config nodes, not the objects Hydra instantiated from them
        self.sampler_cfg = self.config.hydra.sweeper.sampler
        self.pruners_cfg = self.config.hydra.sweeper.pruners
        if self.sampler_cfg.get("_partial_"):  # the grid sampler: its choices from the params
            self.grid = grid(self.space)
            size = math.prod(len(v) for v in self.grid.values())
            if size < self.n_trials:
                log.info(f"n_trials {self.n_trials} -> {size}: the grid has {size} points")
                self.n_trials = size

    def sampler(self, offset: int) -> optuna.samplers.BaseSampler:
        """The configured sampler, seeded with ``seed + offset`` (unseeded without a seed)."""
        cfg = OmegaConf.to_container(self.sampler_cfg, resolve=True)
        if cfg.get("seed") is not None:
            cfg["seed"] = (int(cfg["seed"]) + 7919 * offset) % 2**32
        made = instantiate(cfg)
        return made(self.grid) if isinstance(made, functools.partial) else made

    def _check_same_sweep(self, study: optuna.Study) -> None:
        stored = study.user_attrs.get(ARGUMENTS_ATTR)
        if stored is None:
            study.set_user_attr(ARGUMENTS_ATTR, self.params_conf)
        elif sorted(stored) != sorted(self.params_conf):
            gone = sorted(set(stored) - set(self.params_conf))
            new = sorted(set(self.params_conf) - set(stored))
            raise ValueError(
                f"study '{study.study_name}' ({redact(self.sweeper.storage)}) was started with "
                f"other overrides: this sweep lacks {gone} and adds {new}. Run the original "
                "command to resume it, or start a new study: hydra.sweeper.study_name=<new name>."
            )

    def _open(self) -> tuple[optuna.Study, optuna.storages.BaseStorage]:
        self.sweep_dir.mkdir(parents=True, exist_ok=True)
        write_atomically(self.sweep_dir / "multirun.yaml", OmegaConf.to_yaml(self.config))
        storage = open_storage(str(self.sweeper.storage))
        pruner = build_pruner(self.sweeper.pruner, self.pruners_cfg)
        study = optuna.create_study(
            study_name=self.sweeper.study_name, storage=storage, sampler=self.sampler(0),
            pruner=pruner, directions=self.directions, load_if_exists=True,
        )  # fmt: skip
        write_study_file(self.sweep_dir, study.study_name, str(self.sweeper.storage))
        self._check_same_sweep(study)
        return study, storage

    def _ask(self, study: optuna.Study, storage: optuna.storages.BaseStorage,
             n: int) -> list[Trial]:  # fmt: skip
        trials = []
        for _ in range(n):
            study.sampler = self.sampler(len(study.get_trials(deepcopy=False)))
            trial = study.ask()
            earlier = [t for t in study.get_trials(deepcopy=False) if t.number < trial.number]
            if sum(counts(t) for t in earlier) >= self.n_trials:  # another worker took the slot
                trial.set_user_attr(SURPLUS, True)
                study.tell(trial, state=TrialState.FAIL)
                break
            claim(storage, trial._trial_id)
            study.sampler = self.sampler(trial.number)
            suggest(trial, self.space)
            for name, value in self.fixed.items():
                trial.set_user_attr(name, value)
            trials.append(trial)
        return trials

    def _launch(self, trials: list[Trial]) -> list[JobReturn]:
        """Launch the batch so that each job's number is its trial's number."""
        launcher = self.sweeper.launcher
        overrides = [
            tuple(f"{k}={v}" for k, v in {**t.params, **self.fixed}.items()) for t in trials
        ]
        numbers = [t.number for t in trials]
        if numbers == list(range(numbers[0], numbers[0] + len(numbers))):
            return list(launcher.launch(overrides, initial_job_idx=numbers[0]))
        returns: list[JobReturn] = []
        for number, override in zip(numbers, overrides, strict=True):
            returns += launcher.launch([override], initial_job_idx=number)
        return returns

    def _tell(self, study: optuna.Study, storage: optuna.storages.BaseStorage, trial: Trial,
              ret: JobReturn) -> bool:  # fmt: skip
        """Tell the job's result; ``True`` if the trial failed."""
        stored = storage.get_trial(trial._trial_id)
        if stored.state.is_finished():  # another worker judged it dead meanwhile
            log.warning(f"trial {trial.number} was already {stored.state.name}; result dropped")
            return False
        values, error = trial_values(ret, len(self.directions))
        if error is None and stored.user_attrs.get(PRUNED_ATTR) is not None:
            study.tell(trial, state=TrialState.PRUNED, skip_if_finished=True)
            log.info(f"trial {trial.number} was pruned at epoch {stored.user_attrs[PRUNED_ATTR]}")
            return False
        if error is None:
            study.tell(trial, values if len(values) > 1 else values[0], skip_if_finished=True)
            return False
        trial.set_user_attr("error", error[:1000])
        study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
        log.warning(f"trial {trial.number} failed ({error}); the sweep goes on")
        return True

    def run(self) -> None:
        study, storage = self._open()
        sweeper = self.sweeper
        interrupted = requeue_dead(study, storage, sweeper.grace_period)
        if len(study.trials) > interrupted:
            done = finished_count(study.trials)
            log.info(f"Resuming study '{study.study_name}': {done} of {self.n_trials} trials "
                     f"finished, {interrupted} interrupted (re-queued)")  # fmt: skip
        log.info(f"Study: {study.study_name}, storage: {redact(str(sweeper.storage))}, "
                 f"directions: {self.directions}, pruner: {sweeper.pruner}")  # fmt: skip
        ran = failed = 0
        while True:
            requeue_dead(study, storage, sweeper.grace_period)
            trials = study.get_trials(deepcopy=False)
            if finished_count(trials) >= self.n_trials:
                break
            waiting = sum(t.state == TrialState.WAITING for t in trials)
            free = self.n_trials - sum(counts(t) for t in trials)
            batch = min(sweeper.n_jobs, max(free, 0) + waiting)
            if batch == 0:  # the others' trials are running: wait, in case one dies
                time.sleep(WAIT_S)
                continue
            asked = self._ask(study, storage, batch)
            if not asked:
                continue
            with heartbeat(storage, [t._trial_id for t in asked], sweeper.heartbeat_interval):
                returns = self._launch(asked)
            failed += sum(
                self._tell(study, storage, t, r) for t, r in zip(asked, returns, strict=True)
            )
            ran += len(asked)
            if failed / ran > sweeper.max_failure_rate:
                raise RuntimeError(
                    f"{failed} of {ran} trials failed (max_failure_rate="
                    f"{sweeper.max_failure_rate}); see run_info.json in {self.sweep_dir}"
                )
        self._write_results(study)

    def _write_results(self, study: optuna.Study) -> None:
        completed = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        pruned = study.get_trials(deepcopy=False, states=(TrialState.PRUNED,))
        if not completed and pruned:
            log.warning(
                f"every finished trial of study '{study.study_name}' was pruned: no best "
                "trial (a laxer pruner, or more trials, will give one)"
            )
        elif not completed:
            errors = [t.user_attrs["error"] for t in study.trials if t.user_attrs.get("error")]
            raise RuntimeError(
                f"no trial of study '{study.study_name}' completed"
                + (f"; the first error: {errors[0]}" if errors else "")
            )
        results: dict[str, Any] = {"name": "optuna", "study_name": study.study_name}
        if completed and len(self.directions) > 1:
            results["solutions"] = [
                {"trial": t.number, "params": t.params, "values": t.values}
                for t in study.best_trials
            ]
        elif completed:
            best = study.best_trial
            results.update(best_trial=best.number, best_params=best.params,
                           best_value=best.value)  # fmt: skip
            log.info(f"Best trial: {best.number}, value {best.value}, params {best.params}")
        states = [t.state.name for t in study.trials]
        results["trials"] = {s: states.count(s) for s in sorted(set(states))}
        text = OmegaConf.to_yaml(OmegaConf.create(results))
        write_atomically(self.sweep_dir / "optimization_results.yaml", text)


def sweep(sweeper: ResumableOptunaSweeper, arguments: Sequence[str]) -> None:
    SweepLoop(sweeper, list(arguments)).run()
