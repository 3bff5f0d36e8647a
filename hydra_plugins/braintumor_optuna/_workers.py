"""Many sweep workers on one study: who runs which trial, whether it is still alive, and how
many trials the study still needs.

Each trial a worker runs carries the worker (host, pid) and a heartbeat (a time stamp it
refreshes every ``heartbeat_interval`` s) as system attributes, in any storage (RDB or
journal). A RUNNING trial is dead when its worker's process on this host is gone, or when
its heartbeat is older than ``grace_period`` s (another host, or a hung process). A dead trial
is failed (the storage lets exactly one worker do that) with the user attribute
``interrupted``, and its parameters are queued for the next worker that asks.

Interrupted trials, and the rare surplus trial of two workers asking for the last slot at
once, do not count towards ``n_trials``.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

from braintumor.atomic import process_alive

log = logging.getLogger(__name__)

WORKER = "braintumor:worker"
HEARTBEAT = "braintumor:heartbeat"
INTERRUPTED = "interrupted"
SURPLUS = "surplus"


def counts(trial: FrozenTrial) -> bool:
    """Whether a trial counts towards ``n_trials`` (not an interrupted or surplus one)."""
    return not (
        trial.state == TrialState.FAIL
        and (trial.user_attrs.get(INTERRUPTED) or trial.user_attrs.get(SURPLUS))
    )


def finished_count(trials: Sequence[FrozenTrial]) -> int:
    """Counted trials that are finished (COMPLETE, PRUNED or FAIL)."""
    return sum(t.state.is_finished() and counts(t) for t in trials)


def this_worker() -> dict[str, object]:
    return {"host": socket.gethostname(), "pid": os.getpid()}


def claim(storage: optuna.storages.BaseStorage, trial_id: int) -> None:
    """Mark a trial as this worker's, alive now."""
    storage.set_trial_system_attr(trial_id, WORKER, this_worker())
    storage.set_trial_system_attr(trial_id, HEARTBEAT, time.time())


def is_dead(trial: FrozenTrial, grace_period: float, now: float | None = None) -> bool:
    """A RUNNING trial whose worker is gone (see the module doc)."""
    if trial.state != TrialState.RUNNING:
        return False
    worker = trial.system_attrs.get(WORKER) or {}
    if worker.get("host") == socket.gethostname():  # this host: is its process alive?
        if worker.get("pid") == os.getpid():
            return False  # ours
        if not process_alive(int(worker["pid"])):
            return True
    # (a live process with a stale heartbeat is hung, or took a dead worker's pid)
    beat = trial.system_attrs.get(HEARTBEAT)
    if beat is None:  # asked, not yet claimed (or by a worker of another kind): its start
        started = trial.datetime_start
        beat = started.timestamp() if started is not None else None
    return beat is not None and (now or time.time()) - float(beat) > grace_period


def requeue_dead(study: optuna.Study, storage: optuna.storages.BaseStorage,
                 grace_period: float) -> int:  # fmt: skip
    """Fail the dead trials and queue their parameters again; the number this worker failed."""
    failed = 0
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if not is_dead(trial, grace_period):
            continue
        try:
            storage.set_trial_user_attr(trial._trial_id, INTERRUPTED, True)
            if not storage.set_trial_state_values(trial._trial_id, TrialState.FAIL):
                continue
        except UpdateFinishedTrialError:  # another worker was first, or it just finished
            continue
        if trial.params:
            study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})
        failed += 1
        worker = trial.system_attrs.get(WORKER) or {}
        log.warning(
            f"trial {trial.number} was interrupted (worker {worker.get('host')}:"
            f"{worker.get('pid')} is gone): it will run again"
        )
    return failed


@contextmanager
def heartbeat(storage: optuna.storages.BaseStorage, trial_ids: Sequence[int],
              interval: float) -> Iterator[None]:  # fmt: skip
    """Refresh the trials' heartbeats every ``interval`` s while the block runs."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(interval):
            for trial_id in trial_ids:
                try:
                    storage.set_trial_system_attr(trial_id, HEARTBEAT, time.time())
                except UpdateFinishedTrialError:  # finished (or failed by another worker)
                    pass
                except Exception as error:  # a storage hiccup must not end the trial
                    log.warning(f"heartbeat of trial id {trial_id} not recorded: {error}")

    thread = threading.Thread(target=beat, name="optuna-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
