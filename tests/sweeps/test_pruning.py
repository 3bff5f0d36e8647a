"""Pruning: a trial the study's pruner stops ends PRUNED in the study, in its run_info.json,
its reports, its checkpoint and the sweep report; it trained fewer epochs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import optuna
import pytest
import torch

from braintumor.sweeps.report import write_sweep_report
from tests.conftest import FAST, ROOT

# a pruner that stops every trial after its second epoch (epoch 1): macro-F1 is never >= 2
ALWAYS = "{_target_:optuna.pruners.ThresholdPruner,lower:2.0,n_warmup_steps:1}"


def _cmd(tiny_root, tmp_path, study: str) -> list[str]:
    """A one-trial sweep of 4 epochs with the ``always`` pruner (stops it after epoch 1)."""
    fast = [f for f in FAST if not f.startswith("trainer.max_epochs")]
    return [sys.executable, str(ROOT / "train.py"), "-m", "hparams_search=cnn_optuna",
            "hydra.sweeper.n_trials=1", f"hydra.sweeper.study_name={study}",
            f"+hydra.sweeper.pruners.always={ALWAYS}", "hparams_search.pruner=always",
            "data=folder", f"data.root={tiny_root}", f"paths.log_dir={tmp_path / 'outputs'}",
            f"paths.cache_dir={tmp_path / 'cache'}", *fast, "trainer.max_epochs=4",
            "augment=none", "data.image_size=32", "data.batch_size=16",
            "model.net.width_multiplier=0.5"]  # fmt: skip


def test_a_pruned_trial_stops_early_and_says_so_everywhere(tiny_root, tmp_path):
    cmd = _cmd(tiny_root, tmp_path, "p")
    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    sweep = tmp_path / "outputs" / "optuna" / "p"
    storage = f"sqlite:///{sweep}/optuna.db"
    trial = optuna.load_study(study_name="p", storage=storage).trials[0]
    assert trial.state.name == "PRUNED" and sorted(trial.intermediate_values) == [0, 1]
    assert trial.user_attrs["pruned_at_epoch"] == 1
    job = sweep / "0"
    info = json.loads((job / "run_info.json").read_text())
    assert info["status"] == "pruned" and info["epochs"] == 2  # of 4
    assert info["pruned"]["epoch"] == 1 and info["pruned"]["monitor"] == "val/f1_macro"
    assert info["pruned"]["value"] == trial.intermediate_values[1]
    report = json.loads((job / "reports" / "optuna_trial.json").read_text())
    assert report["state"] == "pruned" and report["pruned_at_epoch"] == 1
    assert report["reported"] == {str(k): v for k, v in trial.intermediate_values.items()}
    assert (job / "reports" / "test_metrics.json").is_file()  # the best checkpoint is tested
    last = torch.load(job / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert last["callbacks"]["OptunaPruning"]["pruned_at_epoch"] == 1
    rows = write_sweep_report(sweep)["rows"]
    assert [(r["status"], r["optuna_state"]) for r in rows] == [("pruned", "PRUNED")]
    assert "every finished trial" in done.stdout + done.stderr  # no best trial, no crash


@pytest.mark.slow
def test_under_ddp_only_rank_0_reports_and_both_processes_stop_together(tiny_root, tmp_path):
    """trainer=ddp_sim (2 processes), the trial given to the callback (a sweep's DDP trials go
    through a launcher that starts each rank itself, e.g. hydra/launcher=slurm): one report
    per epoch in the journal (rank 0's), and both ranks stop after the pruned epoch (a rank
    left training would hang the other in its next collective)."""
    from optuna.storages.journal._storage import JournalOperation

    from braintumor.sweeps.study import open_storage

    journal = tmp_path / "study.journal"
    study = optuna.create_study(study_name="d", storage=open_storage(str(journal)))
    study.ask()  # trial 0, RUNNING, as a sweeper leaves it for its job
    trial = (f"{{storage:'{journal}',study_name:d,trial_number:0,pruner:always,"
             f"pruners:{{always:{ALWAYS}}}}}")  # fmt: skip
    run = tmp_path / "run"
    fast = [f for f in FAST if not f.startswith("trainer.max_epochs")]
    cmd = [sys.executable, str(ROOT / "train.py"), f"hydra.run.dir={run}", "data=folder",
           f"data.root={tiny_root}", f"paths.cache_dir={tmp_path / 'cache'}", *fast,
           "trainer.max_epochs=4", "trainer=ddp_sim", "logger=none",
           "~callbacks.augmented_samples", f"+callbacks.optuna_pruning.trial={trial}"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    reported = optuna.load_study(study_name="d", storage=open_storage(str(journal))).trials[0]
    assert sorted(reported.intermediate_values) == [0, 1]
    ops = [json.loads(line)["op_code"] for line in journal.read_text().splitlines()]
    assert ops.count(JournalOperation.SET_TRIAL_INTERMEDIATE_VALUE) == 2  # rank 0's only
    info = json.loads((run / "run_info.json").read_text())
    assert info["status"] == "pruned" and info["epochs"] == 2
