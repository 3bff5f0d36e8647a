"""Helpers of the many-workers tests: the sweep command of one worker, starting workers, and
reading their study."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import optuna

from tests.conftest import FAST, ROOT

# small trials: 1 epoch, no test reports; lr and weight decay searched (the config's space)
TRIAL = ["data.image_size=32", "data.batch_size=16", "augment=none", "test=false",
         "model.net.width_multiplier=0.5", "model.net.dropout=0.1"]  # fmt: skip


def worker_cmd(tmp_path: Path, data: Path, storage: str, n_trials: int, study: str) -> list[str]:
    """One worker of a shared study (every worker runs the same command)."""
    fast = [f for f in FAST if not f.startswith(("data.image_size", "data.batch_size"))]
    return [sys.executable, str(ROOT / "train.py"), "-m", "hparams_search=cnn_optuna",
            f"hydra.sweeper.n_trials={n_trials}", f"hydra.sweeper.study_name={study}",
            f"hydra.sweeper.storage={storage}", "hparams_search.pruner=none",
            "hydra.sweeper.sampler.n_startup_trials=4", "data=folder", f"data.root={data}",
            f"paths.log_dir={tmp_path / 'outputs'}", f"paths.cache_dir={tmp_path / 'cache'}",
            *fast, *TRIAL]  # fmt: skip


def start_workers(cmd: list[str], n: int, cwd: Path) -> list[subprocess.Popen]:
    return [
        subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(n)
    ]


def finish(workers: list[subprocess.Popen], timeout: float = 600) -> list[str]:
    """Wait for the workers; their outputs (asserting each exited 0)."""
    outputs = [w.communicate(timeout=timeout)[0] for w in workers]
    for worker, out in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, out[-4000:]
    return outputs


def load(storage: str, name: str) -> optuna.Study:
    from braintumor.sweeps.study import open_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.load_study(study_name=name, storage=open_storage(storage))


def worker_pid(trial: optuna.trial.FrozenTrial) -> int:
    return trial.system_attrs["braintumor:worker"]["pid"]
