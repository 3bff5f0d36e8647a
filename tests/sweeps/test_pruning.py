"""Pruning: a trial the study's pruner stops ends PRUNED in the study, in its run_info.json,
its reports, its checkpoint and the sweep report; it trained fewer epochs."""

from __future__ import annotations

import json
import subprocess
import sys

import optuna
import torch

from braintumor.sweeps.report import write_sweep_report
from tests.conftest import FAST, ROOT

# a pruner that stops every trial after its second epoch (epoch 1): macro-F1 is never >= 2
ALWAYS = "{_target_:optuna.pruners.ThresholdPruner,lower:2.0,n_warmup_steps:1}"


def test_a_pruned_trial_stops_early_and_says_so_everywhere(tiny_root, tmp_path):
    fast = [f for f in FAST if not f.startswith("trainer.max_epochs")]
    cmd = [sys.executable, str(ROOT / "train.py"), "-m", "hparams_search=cnn_optuna",
           "hydra.sweeper.n_trials=1", "hydra.sweeper.study_name=p",
           f"+hydra.sweeper.pruners.always={ALWAYS}", "hparams_search.pruner=always",
           "data=folder", f"data.root={tiny_root}", f"paths.log_dir={tmp_path / 'outputs'}",
           f"paths.cache_dir={tmp_path / 'cache'}", *fast, "trainer.max_epochs=4",
           "augment=none", "data.image_size=32", "data.batch_size=16",
           "model.net.width_multiplier=0.5"]  # fmt: skip
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
