"""Optuna sweeps through ``train.py -m hparams_search=cnn_optuna``: failed trials, the report's
agreement with Optuna, resuming a finished or killed study."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import OmegaConf

from braintumor.sweeps.report import write_sweep_report
from hydra_plugins.braintumor_optuna._loop import trial_values
from tests.conftest import FAST, ROOT

# a small search: lr and weight decay searched; dropout 1.0 is refused by the network, so
# the trials that draw it fail for real (and the sweep must go on)
SEARCH = ["data.image_size=32", "data.batch_size=16", "augment=none",
          "model.net.width_multiplier=0.5", "model.net.dropout=choice(0.2,1.0)"]  # fmt: skip


def _sweep_cmd(tmp_path: Path, data: Path, n_trials: int, study: str, seed: int) -> list[str]:
    """The sweep command; ``seed`` picks the sampler's draws (seed 4: dropout 0.2, 1.0, 0.2;
    seed 6: 0.2, 0.2, 0.2, then 1.0)."""
    fast = [f for f in FAST if not f.startswith(("data.image_size", "data.batch_size"))]
    return [sys.executable, str(ROOT / "train.py"), "-m", "hparams_search=cnn_optuna",
            f"hydra.sweeper.n_trials={n_trials}", f"hydra.sweeper.study_name={study}",
            f"hydra.sweeper.sampler.seed={seed}", "hydra.sweeper.sampler.n_startup_trials=2",
            "data=folder", f"data.root={data}", f"paths.log_dir={tmp_path / 'outputs'}",
            f"paths.cache_dir={tmp_path / 'cache'}", *fast, *SEARCH]  # fmt: skip


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def _study(sweep: Path, name: str = "s") -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.load_study(study_name=name, storage=f"sqlite:///{sweep}/optuna.db")


def test_optuna_sweep_survives_failed_trials_and_reports_optunas_best(tiny_root, tmp_path):
    _run(_sweep_cmd(tmp_path, tiny_root, 3, study="s", seed=4), tmp_path)
    sweep = tmp_path / "outputs" / "optuna" / "s"
    study = _study(sweep)
    states = [t.state.name for t in study.trials]
    assert len(states) == 3 and "FAIL" in states and "COMPLETE" in states, states
    for trial in study.trials:  # job folder = trial number; run_info agrees with Optuna
        info = json.loads((sweep / str(trial.number) / "run_info.json").read_text())
        assert info["status"] == ("completed" if trial.state.name == "COMPLETE" else "failed")
        if trial.state.name == "FAIL":
            assert "dropout" in info["error"] and "dropout" in trial.user_attrs["error"]
            assert trial.params["model.net.dropout"] == 1.0
        else:
            assert info["objective"] == pytest.approx(trial.value)
    report = write_sweep_report(sweep)  # the callback wrote it too; the table is sorted
    assert report["best_job"] == report["optuna_best"] == study.best_trial.number
    table = (sweep / "sweep_summary.md").read_text()
    assert f"Optuna's best trial: {study.best_trial.number}" in table
    assert "| 1 | " + str(study.best_trial.number) + " | completed |" in table
    assert (sweep / "sweep_summary.png").stat().st_size > 10_000
    sweep_cfg = OmegaConf.load(sweep / "multirun.yaml")  # the sweep's config, as Hydra's own
    assert "tag(log" in sweep_cfg.hydra.sweeper.params["model.optimizer.lr"]
    results = OmegaConf.load(sweep / "optimization_results.yaml")
    assert results.best_trial == study.best_trial.number


def test_a_nan_or_raising_job_is_a_failed_trial():
    nan = JobReturn(status=JobStatus.COMPLETED, _return_value=math.nan)
    raised = JobReturn(status=JobStatus.FAILED, _return_value=FloatingPointError("loss is nan"))
    nothing = JobReturn(status=JobStatus.COMPLETED, _return_value=None)
    assert trial_values(nan, 1)[0] is None and "not finite" in trial_values(nan, 1)[1]
    assert trial_values(raised, 1) == (None, "FloatingPointError: loss is nan")
    assert trial_values(nothing, 1)[0] is None
    ok = JobReturn(status=JobStatus.COMPLETED, _return_value=0.5)
    assert trial_values(ok, 1) == ([0.5], None)


@pytest.mark.slow
def test_optuna_resumes_a_killed_sweep_and_extends_a_finished_one(tiny_root, tmp_path):
    cmd = _sweep_cmd(tmp_path, tiny_root, 3, study="r", seed=6)
    sweep = tmp_path / "outputs" / "optuna" / "r"
    process = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while not (sweep / "1" / "run_info.json").is_file():
        assert process.poll() is None and time.monotonic() < deadline, "no second trial"
        time.sleep(0.2)
    os.kill(process.pid, signal.SIGKILL)  # mid-trial: no chance to clean up
    process.wait()
    killed = _study(sweep, "r").trials
    assert len(killed) == 2 and killed[1].state.name == "RUNNING"

    result = _run(cmd, tmp_path)  # the same command again
    assert "Resuming study 'r'" in result.stdout + result.stderr
    trials = _study(sweep, "r").trials
    assert (trials[0].state, trials[0].value) == (killed[0].state, killed[0].value)  # kept
    assert trials[1].state.name == "FAIL" and trials[1].user_attrs["interrupted"]
    assert trials[2].params == trials[1].params  # the killed trial ran again first
    finished = [t for t in trials if not t.user_attrs.get("interrupted")]
    assert len(finished) == 3 and len(trials) == 4
    rows = {r["job"]: r for r in write_sweep_report(sweep)["rows"]}
    assert rows[1]["status"] == "interrupted" and sorted(rows) == [0, 1, 2, 3]

    again = _run(cmd, tmp_path)  # finished: nothing to do
    assert len(_study(sweep, "r").trials) == 4 and "Launching" not in again.stdout
    more = [c.replace("n_trials=3", "n_trials=4") for c in cmd]
    _run(more, tmp_path)  # a larger n_trials extends the same study
    assert len(_study(sweep, "r").trials) == 5

    other = [*cmd, "seed=7"]  # different overrides: refused, study untouched
    refused = subprocess.run(other, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert refused.returncode != 0 and "study_name" in refused.stdout + refused.stderr


def test_a_sweep_rerun_for_another_ddp_rank_stops_with_advice(tiny_root, tmp_path):
    cmd = _sweep_cmd(tmp_path, tiny_root, 1, study="ddp", seed=0)
    env = {**os.environ, "LOCAL_RANK": "1"}  # as Lightning's ddp launcher starts rank 1
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert "hydra/launcher=slurm" in done.stdout + done.stderr
    assert not (tmp_path / "outputs" / "optuna" / "ddp" / "optuna.db").exists()  # no study
