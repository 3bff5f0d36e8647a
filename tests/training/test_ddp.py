"""Two CPU processes (trainer=ddp_sim): the test metrics equal a single process's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import FAST, ROOT


def _train_py(run_dir: Path, *overrides: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(ROOT / "train.py"), f"hydra.run.dir={run_dir}",
           f"paths.cache_dir={run_dir.parent / 'cache'}", *FAST, "logger=none",
           "~callbacks.augmented_samples", *overrides]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        cmd, cwd=run_dir.parent, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def _metrics(run_dir: Path, split: str) -> dict:
    values = json.loads((run_dir / "reports" / f"{split}_metrics.json").read_text())
    values.pop("checkpoint")
    return values


def test_ddp_sim_scores_every_test_image_once_like_a_single_process(tiny_root, tmp_path):
    # 11 val and 11 test images: 2 processes cannot split them evenly without padding
    data = ["data=folder", f"data.root={tiny_root}", "seed=2", "data.batch_size=4",
            "data.val_fraction=0.17", "data.test_fraction=0.17"]  # fmt: skip
    ddp = tmp_path / "ddp"
    _train_py(ddp, *data, "trainer=ddp_sim", "trainer.max_epochs=2")
    assert not list(ddp.glob("**/.pl_hydra_rank_1/*.json")), "rank 1 wrote reports"
    best = next((ddp / "checkpoints").glob("epoch_*.ckpt"))
    single = tmp_path / "single"
    _train_py(single, *data, "train=false", f"ckpt_path={best}")
    for split in ("val", "test"):
        together, alone = _metrics(ddp, split), _metrics(single, split)
        assert together["n"] == alone["n"] == 11  # none twice, none lost
        assert together.keys() == alone.keys()
        for key, value in alone.items():  # counts exact; probabilities to float32 rounding
            if not isinstance(value, (int, float)):  # intervals, cases, ...: same keys
                assert isinstance(together[key], type(value)), key
                continue
            tolerance = 0.0 if key in ("n", "accuracy", "f1_macro", "precision_macro") else 1e-6
            assert abs(together[key] - value) <= tolerance, (split, key, together[key], value)
