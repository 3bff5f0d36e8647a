"""Sweep launchers: each job as its own local process (submitit), SLURM settings compose."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import FAST, ROOT


@pytest.mark.slow  # ~28 s on 2 cores; make test-full
def test_local_launcher_runs_each_sweep_job_as_its_own_process(tiny_root, tmp_path):
    sweep = tmp_path / "sweep"
    cmd = [sys.executable, str(ROOT / "train.py"), "-m", "hydra/launcher=local", "data=folder",
           f"data.root={tiny_root}", "model.optimizer.lr=1e-3,3e-4", f"hydra.sweep.dir={sweep}",
           f"paths.cache_dir={tmp_path / 'cache'}", *FAST, "logger=none",
           "~callbacks.augmented_samples"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for job in ("0", "1"):
        assert (sweep / job / "reports" / "test_metrics.json").is_file(), job
    # submitit's local executor names each job's folder after the process it started
    jobs = [p for p in (sweep / ".submitit").iterdir() if p.name.isdigit()]
    assert len(jobs) == 2 and all(next(p.glob("*_result.pkl"), None) for p in jobs)
    assert len({p.name for p in jobs}) == 2 and str(os.getpid()) not in {p.name for p in jobs}


def test_slurm_launcher_settings_compose(compose):
    overrides = ["hydra/launcher=slurm", "hydra.launcher.partition=gpu",
                 "hydra.launcher.gpus_per_node=4", "hydra.launcher.tasks_per_node=4",
                 "trainer=ddp", "trainer.devices=4"]  # fmt: skip
    cfg = compose(overrides, hydra=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert (launcher.partition, launcher.gpus_per_node, launcher.tasks_per_node) == ("gpu", 4, 4)
    assert launcher.timeout_min == 240 and launcher.mem_gb == 32
    assert cfg.trainer.strategy == "ddp" and cfg.trainer.devices == 4
