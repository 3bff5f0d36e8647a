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
from lightning.pytorch import Callback, LightningModule, Trainer

from braintumor.pipeline.train import train
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
    """Start ``cmd``, send ``sig`` at a random moment after its first epoch; its output.

    The moment is at most 40 ms after the first ``last.ckpt``: an epoch of this tiny run
    takes ~45 ms on a 2-core CPU, and the 5 left ~0.25 s (a later signal hits the final
    evaluation, or a finished run)."""
    process = subprocess.Popen(
        cmd, cwd=cwd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    last = run_dir / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 240
    while not last.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(random.Random(seed).uniform(0.0, 0.04))
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
    assert _epoch_of(run_dir / "checkpoints" / "last.ckpt") < EPOCHS - 1, "killed after training"
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


def _epoch_of(path: Path) -> int:
    """The epoch stored in a checkpoint, or -1 while there is none (or it is being replaced)."""
    try:
        return int(torch.load(path, map_location="cpu", weights_only=True)["epoch"])
    except (OSError, RuntimeError, EOFError):
        return -1


def _kill_after_epoch(cmd: list[str], cwd: Path, run_dir: Path, epoch: int) -> None:
    """Start ``cmd`` and kill -9 it as soon as its ``last.ckpt`` holds ``epoch``."""
    process = subprocess.Popen(
        cmd, cwd=cwd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    last = run_dir / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 240
    while process.poll() is None and time.monotonic() < deadline and _epoch_of(last) < epoch:
        time.sleep(0.02)
    process.kill()
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL, "the run ended before it was killed"


def test_resume_into_a_new_folder_carries_the_best_checkpoint_over(
    tiny_root, tmp_path, uninterrupted
):
    """Killed after its best epoch, resumed into a new folder: the best checkpoint comes along
    (the new folder's own epochs are worse) and decides the test metrics. The replay itself,
    with the best epoch after the kill, in every loader mode:
    test_kill_9_then_resume_replays_the_uninterrupted_run."""
    reference = json.loads((uninterrupted / "reports" / "test_metrics.json").read_text())
    best = Path(reference["checkpoint"])
    best_epoch = int(best.stem.removeprefix("epoch_"))
    assert best_epoch < EPOCHS - 1, "the reference run's best epoch must come before the kill"
    killed = tmp_path / "killed"
    _kill_after_epoch(_command(tiny_root, killed), tmp_path, killed, best_epoch)
    resumed = tmp_path / "resumed"
    _run(_command(tiny_root, resumed, f"ckpt_path={killed / 'checkpoints' / 'last.ckpt'}"),
         tmp_path)  # fmt: skip
    metrics = json.loads((resumed / "reports" / "test_metrics.json").read_text())
    assert Path(metrics["checkpoint"]) == resumed / "checkpoints" / best.name  # carried over
    _assert_same(resumed, uninterrupted)


class SignalAt(Callback):
    """Sends ``signal`` (a name: ``SIGKILL``, ``SIGTERM``) to its own process as batch
    ``batch`` of epoch ``epoch`` starts: a real signal, at a moment that does not depend on the
    machine's speed (batch 0: after the previous epoch's ``last.ckpt``)."""

    def __init__(self, epoch: int, batch: int = 0, signal: str = "SIGKILL") -> None:
        self.epoch, self.batch, self.signal = epoch, batch, signal

    def on_train_batch_start(
        self, trainer: Trainer, pl_module: LightningModule, batch: object, batch_idx: int
    ) -> None:
        if (trainer.current_epoch, batch_idx) == (self.epoch, self.batch):
            os.kill(os.getpid(), getattr(signal, self.signal))


REPLAY_EPOCHS, KILLED_AFTER = 3, 0  # killed after epoch 0: epochs 1 and 2 are trained resumed
# The best checkpoint is the latest epoch: the test metrics come from an epoch trained after the
# resume (a best epoch before the kill would be carried over and hide a wrong replay).
REPLAY = [f"trainer.max_epochs={REPLAY_EPOCHS}", "callbacks.model_checkpoint.monitor=epoch"]
LOADER_MODES = {  # the loader modes the docs offer; all must give the in-process result
    "workers0": ["data.num_workers=0"],
    "workers1": ["data.num_workers=1"],
    "workers2": ["data.num_workers=2"],
    "workers2-not-persistent": ["data.num_workers=2", "data.persistent_workers=false"],
    "workers2-loader-augment": ["data.num_workers=2", "data.augment_on=loader"],
    "workers2-disk-cache": ["data.num_workers=2", "data.cache=disk"],
    "workers1-device-augment": ["data.num_workers=1", "data.augment_on=device"],
}
FAST_MODES = ("workers1",)
SIGNAL_AT = "tests.training.test_resume.SignalAt"  # as a train.py run imports it


def _reference_of(mode: list[str]) -> list[str]:
    """The uninterrupted run a mode must reproduce: in-process loading (``num_workers=0``) with
    the mode's augmentation; loader workers, persistence and the cache change nothing."""
    return [o for o in mode if o.startswith("data.augment_on=")]


@pytest.fixture(scope="module")
def references(tiny_root, tmp_path_factory):
    """``reference(overrides)``: the run directory of that uninterrupted run (made once)."""
    made: dict[tuple[str, ...], Path] = {}

    def reference(overrides: list[str]) -> Path:
        if tuple(overrides) not in made:
            run_dir = tmp_path_factory.mktemp("reference") / "uninterrupted"
            cmd = _command(tiny_root, run_dir, *REPLAY, "data.num_workers=0", *overrides)
            _run(cmd, run_dir.parent)
            made[tuple(overrides)] = run_dir
        return made[tuple(overrides)]

    return reference


def _assert_identical(resumed: Path, reference: Path) -> None:
    """The same test metrics, best checkpoint and weights, bit for bit."""
    metrics = json.loads((resumed / "reports" / "test_metrics.json").read_text())
    ref_metrics = json.loads((reference / "reports" / "test_metrics.json").read_text())
    assert Path(metrics["checkpoint"]).name == Path(ref_metrics["checkpoint"]).name
    for key in ("accuracy", "f1_macro", "log_loss", "ece"):
        assert metrics[key] == ref_metrics[key], (key, metrics[key], ref_metrics[key])
    for name in ("last.ckpt", Path(ref_metrics["checkpoint"]).name):
        state = torch.load(resumed / "checkpoints" / name, map_location="cpu")["state_dict"]
        ref_state = torch.load(reference / "checkpoints" / name, map_location="cpu")["state_dict"]
        assert state.keys() == ref_state.keys()
        differ = [k for k, v in state.items() if not torch.equal(v, ref_state[k])]
        assert not differ, f"{name}: {len(differ)} of {len(state)} tensors differ ({differ[:3]})"


@pytest.mark.parametrize(
    "mode",
    [pytest.param(m, marks=() if m in FAST_MODES else pytest.mark.slow) for m in LOADER_MODES],
)
def test_kill_9_then_resume_replays_the_uninterrupted_run(mode, tiny_root, tmp_path, references):
    overrides = LOADER_MODES[mode]
    reference = references(_reference_of(overrides))
    ref_metrics = json.loads((reference / "reports" / "test_metrics.json").read_text())
    best_epoch = int(Path(ref_metrics["checkpoint"]).stem.removeprefix("epoch_"))
    assert best_epoch > KILLED_AFTER, "the best epoch must be one trained after the resume"
    killed = tmp_path / "killed"
    kill = [f"+callbacks.kill._target_={SIGNAL_AT}", f"+callbacks.kill.epoch={KILLED_AFTER + 1}"]
    cmd = _command(tiny_root, killed, *REPLAY, *overrides, *kill)
    process = subprocess.run(cmd, cwd=tmp_path, env=_env(), capture_output=True, text=True)
    assert process.returncode == -signal.SIGKILL, process.stderr[-2000:]
    assert _epoch_of(killed / "checkpoints" / "last.ckpt") == KILLED_AFTER
    if mode == "workers2":  # in place, as the run's own folder names it
        resumed, resume = killed, "ckpt_path=last"
    else:  # into a new folder
        resumed, resume = tmp_path / "resumed", f"ckpt_path={killed / 'checkpoints' / 'last.ckpt'}"
    _run(_command(tiny_root, resumed, *REPLAY, *overrides, resume), tmp_path)
    _assert_identical(resumed, reference)


@pytest.mark.slow
def test_sigterm_mid_epoch_with_loader_workers_then_resume_replays_the_uninterrupted_run(
    tiny_root, tmp_path, references
):
    reference = references([])
    stopped = tmp_path / "stopped"
    term = [f"+callbacks.stop._target_={SIGNAL_AT}", "+callbacks.stop.epoch=1",
            "+callbacks.stop.batch=5", "+callbacks.stop.signal=SIGTERM"]  # fmt: skip
    workers = ["data.num_workers=2"]
    cmd = _command(tiny_root, stopped, *REPLAY, *workers, *term)
    process = subprocess.run(cmd, cwd=tmp_path, env=_env(), capture_output=True, text=True)
    assert process.returncode == 128 + signal.SIGTERM, process.stderr[-2000:]
    saved = torch.load(stopped / "checkpoints" / "interrupted.ckpt", weights_only=False)
    assert saved["global_step"] % 11 != 0, "stopped on an epoch boundary"  # 44 images, batch 4
    resumed = tmp_path / "resumed"
    _run(_command(tiny_root, resumed, *REPLAY, *workers, f"ckpt_path={stopped}"), tmp_path)
    _assert_identical(resumed, reference)


class LearningRates(Callback):
    """Records the learning rate each training epoch starts with."""

    seen: list[float] = []

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        LearningRates.seen.append(trainer.optimizers[0].param_groups[0]["lr"])


def test_extending_a_finished_run_replans_the_learning_rate_schedule(make_cfg, tmp_path):
    probe = f"+callbacks.probe._target_={__name__}.LearningRates"
    train(make_cfg("trainer.max_epochs=1", "logger=none", run="first"))
    last = tmp_path / "first" / "checkpoints" / "last.ckpt"
    LearningRates.seen = []
    cfg = make_cfg("trainer.max_epochs=2", "logger=none", probe, f"ckpt_path={last}", run="more")
    train(cfg)
    # cosine annealing over 2 epochs (T_max=2) at epoch 1, not the 1-epoch plan's end (0.0)
    assert LearningRates.seen == [pytest.approx(0.5e-3)]
    before = torch.load(last, weights_only=True)["state_dict"]
    after = torch.load(tmp_path / "more" / "checkpoints" / "last.ckpt", weights_only=True)
    assert after["epoch"] == 1
    changed = [k for k, v in before.items() if k.startswith("net.") and v.is_floating_point()
               and not torch.equal(v, after["state_dict"][k])]  # fmt: skip
    assert changed, "no weight changed in the added epoch"
