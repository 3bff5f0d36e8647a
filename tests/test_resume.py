"""Crash and resume: a real train.py killed mid-run resumes to the uninterrupted result."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.conftest import FAST, ROOT

EPOCHS = 6


def _command(root: Path, run_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, str(ROOT / "train.py"), "data=folder", f"data.root={root}",
            f"hydra.run.dir={run_dir}", f"paths.cache_dir={run_dir.parent / 'cache'}", *FAST,
            f"trainer.max_epochs={EPOCHS}", "data.batch_size=4", "seed=5",
            "trainer.deterministic=true", "logger=none", "~callbacks.augmented_samples",
            "~callbacks.early_stopping", *extra]  # fmt: skip


def _env() -> dict[str, str]:
    # one thread: the same reductions in every run, and fast on a busy 2-core machine
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def _run(cmd: list[str], cwd: Path) -> None:
    result = subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def _interrupt(cmd: list[str], cwd: Path, run_dir: Path, sig: int, seed: int) -> str:
    """Start ``cmd``, send ``sig`` at a random moment after its first epoch; its output."""
    process = subprocess.Popen(
        cmd, cwd=cwd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    last = run_dir / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 240
    while not last.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(random.Random(seed).uniform(0.0, 0.6))
    process.send_signal(sig)
    output, _ = process.communicate(timeout=120)
    assert process.returncode != 0, f"the run ended before the signal arrived:\n{output[-2000:]}"
    return output


def _final(run_dir: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    metrics = json.loads((run_dir / "reports" / "test_metrics.json").read_text())
    state = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu")["state_dict"]
    return metrics, state


def _assert_same(resumed: Path, reference: Path) -> None:
    metrics, state = _final(resumed)
    ref_metrics, ref_state = _final(reference)
    for key in ("accuracy", "f1_macro", "precision_macro", "recall_macro", "log_loss"):
        assert abs(metrics[key] - ref_metrics[key]) <= 1e-6, (key, metrics[key], ref_metrics[key])
    assert state.keys() == ref_state.keys()
    for key, value in state.items():
        assert torch.allclose(value.float(), ref_state[key].float(), atol=1e-6, rtol=0), key


@pytest.fixture(scope="module")
def uninterrupted(tiny_root, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("resume") / "uninterrupted"
    _run(_command(tiny_root, run_dir), run_dir.parent)
    return run_dir


def test_kill_9_then_resume_gives_the_uninterrupted_result(tiny_root, tmp_path, uninterrupted):
    run_dir = tmp_path / "killed"
    output = _interrupt(_command(tiny_root, run_dir), tmp_path, run_dir, signal.SIGKILL, seed=0)
    assert not (run_dir / "reports" / "test_metrics.json").exists(), output[-2000:]
    _run(_command(tiny_root, run_dir, "ckpt_path=last"), tmp_path)  # resume in place
    _assert_same(run_dir, uninterrupted)


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_mid_epoch_and_resume_replays_exactly(
    tiny_root, tmp_path, uninterrupted
):
    run_dir = tmp_path / "terminated"
    output = _interrupt(_command(tiny_root, run_dir), tmp_path, run_dir, signal.SIGTERM, seed=1)
    saved = run_dir / "checkpoints" / "interrupted.ckpt"
    assert saved.is_file(), output[-3000:]
    assert "resume with ckpt_path=" in output
    step = torch.load(saved, map_location="cpu", weights_only=False)["global_step"]
    batches_per_epoch = 11  # 44 training images, batch 4
    assert step % batches_per_epoch != 0, "the signal landed on an epoch boundary"
    # resume from the run directory, into a new one
    _run(_command(tiny_root, tmp_path / "resumed", f"ckpt_path={run_dir}"), tmp_path)
    _assert_same(tmp_path / "resumed", uninterrupted)
