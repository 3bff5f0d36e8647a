"""Many workers on one study: two sweep processes share a journal file or a SQLite study;
``n_trials`` is the study's total, no trial runs twice, a dead worker's trial is re-run."""

from __future__ import annotations

import json
import os
import signal
import socket
import time

import optuna
import pytest
from optuna.trial import TrialState

from braintumor.sweeps.report import write_sweep_report
from braintumor.sweeps.study import open_storage
from hydra_plugins.braintumor_optuna._workers import (
    HEARTBEAT,
    WORKER,
    claim,
    finished_count,
    is_dead,
    requeue_dead,
)
from tests.sweeps.workers import finish, load, start_workers, worker_cmd, worker_pid


def _assert_one_study_of_distinct_trials(study: optuna.Study, sweep, n: int) -> None:
    trials = study.trials
    assert [t.number for t in trials] == list(range(n))
    assert all(t.state == TrialState.COMPLETE for t in trials), [t.state for t in trials]
    params = [tuple(sorted(t.params.items())) for t in trials]
    assert len(set(params)) == n, "a parameter set ran twice"
    for t in trials:  # one job folder per trial, holding that trial's parameters
        info = json.loads((sweep / str(t.number) / "run_info.json").read_text())
        assert info["status"] == "completed" and info["objective"] == pytest.approx(t.value)
        assert f"model.optimizer.lr={t.params['model.optimizer.lr']}" in info["overrides"]


@pytest.mark.slow  # ~27 s on 2 cores; make test-full
def test_two_workers_share_one_journal_study_and_run_12_distinct_trials(tiny_root, tmp_path):
    journal = tmp_path / "shared" / "study.journal"
    cmd = worker_cmd(tmp_path, tiny_root, str(journal), 12, "w")
    outputs = finish(start_workers(cmd, 2, tmp_path))
    study = load(str(journal), "w")
    sweep = tmp_path / "outputs" / "optuna" / "w"
    _assert_one_study_of_distinct_trials(study, sweep, 12)
    pids = [worker_pid(t) for t in study.trials]
    assert len(set(pids)) == 2, "one worker ran every trial"
    assert all("Best trial" in out for out in outputs)
    report = write_sweep_report(sweep)  # found through optuna_study.yaml
    assert report["optuna_best"] == study.best_trial.number == report["best_job"]


@pytest.mark.slow
def test_two_workers_on_sqlite_and_a_killed_workers_trial_runs_again(tiny_root, tmp_path):
    storage = f"sqlite:///{tmp_path / 'shared' / 'optuna.db'}"
    cmd = worker_cmd(tmp_path, tiny_root, storage, 6, "k")
    doomed, survivor = start_workers(cmd, 2, tmp_path)
    deadline = time.monotonic() + 300
    victim = None
    while victim is None:  # kill the first worker in the middle of one of its trials
        assert doomed.poll() is None and time.monotonic() < deadline, "no trial of the victim"
        time.sleep(0.2)
        try:
            running = load(storage, "k").get_trials(states=(TrialState.RUNNING,))
        except KeyError:  # no study yet
            continue
        victim = next((t for t in running if worker_pid(t) == doomed.pid), None)
    os.kill(doomed.pid, signal.SIGKILL)
    doomed.wait()
    finish([survivor])
    study = load(storage, "k")
    killed = study.trials[victim.number]
    assert killed.state == TrialState.FAIL and killed.user_attrs["interrupted"]
    retry = [t for t in study.trials if t.user_attrs.get("retry_of") == victim.number]
    assert len(retry) == 1 and retry[0].params == killed.params
    assert retry[0].state == TrialState.COMPLETE and worker_pid(retry[0]) == survivor.pid
    assert finished_count(study.trials) == 6 and len(study.trials) == 7


def _running_trial(tmp_path, worker: dict, beat: float | None):
    storage = open_storage(f"sqlite:///{tmp_path / 'o.db'}")
    study = optuna.create_study(study_name="x", storage=storage)
    trial = study.ask()
    trial.suggest_float("lr", 1e-4, 1e-2, log=True)
    storage.set_trial_system_attr(trial._trial_id, WORKER, worker)
    if beat is not None:
        storage.set_trial_system_attr(trial._trial_id, HEARTBEAT, beat)
    return storage, study, trial


def test_a_trial_is_dead_when_its_process_is_gone_or_its_heartbeat_is_stale(tmp_path):
    gone = os.fork()
    if gone == 0:
        os._exit(0)
    os.waitpid(gone, 0)
    here, other = socket.gethostname(), "node-elsewhere"
    cases = {  # (worker, heartbeat age s) -> dead?
        ((here, gone), 0): True,  # this host, process gone: at once
        ((here, os.getppid()), 5): False,  # this host, process alive, a recent heartbeat
        ((here, os.getppid()), 10_000): True,  # alive but silent: hung, or a reused pid
        ((other, 1), 10_000): True,  # another host, no sign of life for long
        ((other, 1), 5): False,  # another host, a recent heartbeat
    }
    for ((host, pid), age), dead in cases.items():
        storage, _, trial = _running_trial(tmp_path / f"{host}{pid}{age}", {"host": host,
                                               "pid": pid}, time.time() - age)  # fmt: skip
        assert is_dead(storage.get_trial(trial._trial_id), grace_period=60) == dead, (host, age)


def test_a_dead_trial_is_failed_once_and_queued_once_by_racing_workers(tmp_path):
    storage, study, _ = _running_trial(tmp_path, {"host": "gone", "pid": 1}, 0.0)
    other = open_storage(f"sqlite:///{tmp_path / 'o.db'}")  # a second worker's connection
    other_study = optuna.load_study(study_name="x", storage=other)
    assert requeue_dead(study, storage, 60) + requeue_dead(other_study, other, 60) == 1
    trials = study.trials
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.WAITING]
    assert trials[0].user_attrs["interrupted"] and trials[1].user_attrs["retry_of"] == 0
    assert trials[1].system_attrs["fixed_params"] == trials[0].params  # asked next: these
    assert finished_count(trials) == 0  # the interrupted trial does not count
    claim(storage, trials[1]._trial_id)  # (what the next worker does after asking)
    assert storage.get_trial(trials[1]._trial_id).system_attrs[WORKER]["pid"] == os.getpid()
