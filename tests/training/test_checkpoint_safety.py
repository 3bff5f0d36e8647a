"""Checkpoints are written whole or not at all, and a damaged one is never loaded."""

from __future__ import annotations

import builtins
import errno
import io
import json
import os
import re
import shutil
from pathlib import Path

import pytest
import torch

from braintumor.inference.torch_predictor import TorchPredictor
from braintumor.pipeline.evaluate import evaluate
from braintumor.pipeline.train import train
from braintumor.runs.record import recorded_run


class _HalfWritten:
    """A file on a full disk: a write stores half of its bytes, then fails with ENOSPC."""

    def __init__(self, f: io.BufferedIOBase) -> None:
        self._f = f

    def write(self, data) -> int:
        data = bytes(data)
        self._f.write(data[: len(data) // 2])
        self._f.flush()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name: str):
        return getattr(self._f, name)

    def __enter__(self) -> _HalfWritten:
        return self

    def __exit__(self, *exc) -> None:
        self._f.close()


def _disk_full_after(monkeypatch: pytest.MonkeyPatch, folder: Path, good_writes: int) -> None:
    """Let ``good_writes`` files be written into ``folder``; then its disk is full: a write
    stops half-way with ENOSPC, into a file opened there as by a move from another filesystem
    (which truncates the destination first, as Lightning's save does from a temp dir)."""
    writes = [0]
    real_open, real_move = builtins.open, shutil.move

    def full(path) -> bool:
        if os.path.realpath(os.path.dirname(path)) != os.path.realpath(folder):
            return False
        writes[0] += 1
        return writes[0] > good_writes

    def fake_open(file, mode="r", *args, **kwargs):
        f = real_open(file, mode, *args, **kwargs)
        writing = isinstance(file, (str, os.PathLike)) and any(c in mode for c in "wxa")
        return _HalfWritten(f) if writing and full(file) else f

    def move(src, dst, *args, **kwargs):
        if not full(dst):
            return real_move(src, dst, *args, **kwargs)
        with _HalfWritten(real_open(dst, "wb")) as out:
            out.write(Path(src).read_bytes())

    monkeypatch.setattr(builtins, "open", fake_open)
    monkeypatch.setattr(shutil, "move", move)


@pytest.mark.parametrize(
    ("override", "kept", "failing"),
    [  # the first file written at epoch 1 fails: last.ckpt, or the epoch's own checkpoint
        ("~callbacks.model_checkpoint", ["last.ckpt"], "last.ckpt"),
        ("callbacks.model_checkpoint.save_top_k=-1", ["epoch_000.ckpt", "last.ckpt"],
         "epoch_001.ckpt"),
    ],
)  # fmt: skip
def test_a_full_disk_keeps_the_previous_checkpoint_and_leaves_nothing_partial(
    make_cfg, tmp_path, monkeypatch, override, kept, failing
):
    cfg = make_cfg("trainer.max_epochs=3", "logger=none", override)
    run_dir = tmp_path / "run"
    _disk_full_after(monkeypatch, run_dir / "checkpoints", good_writes=len(kept))  # epoch 0's
    with pytest.raises(OSError) as error, recorded_run(run_dir, [], "val/f1_macro_best"):
        train(cfg)
    monkeypatch.undo()
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == kept  # no temp files
    assert torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 0

    message = str(error.value)
    assert error.value.errno == errno.ENOSPC
    assert f"could not write checkpoint '{run_dir / 'checkpoints' / failing}'" in message
    assert "No space left on device" in message and "free disk space" in message
    assert f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}" in message

    info = json.loads((run_dir / "run_info.json").read_text())
    assert info["status"] == "failed"
    [failure] = info["checkpoint_failures"]
    assert failure["path"] == str(run_dir / "checkpoints" / failing)
    assert "No space left on device" in failure["error"] and failure["epoch"] == 1


def _flip_conv_bytes(src: Path, dst: Path, count: int = 400) -> None:
    """Copy ``src`` to ``dst`` with ``count`` bytes of its largest convolution's weights
    flipped (the file still loads: nothing checks the bytes of a tensor)."""
    data = bytearray(src.read_bytes())
    state = torch.load(src, map_location="cpu", weights_only=True)["state_dict"]
    convs = [k for k, v in state.items() if k.startswith("net.") and v.dim() == 4]
    name = max(convs, key=lambda k: state[k].numel())
    raw = bytes(state[name].untyped_storage().tolist())  # as stored (channels-last order)
    start = bytes(data).find(raw)
    assert start >= 0 and len(raw) >= count, name
    for i in range(start, start + count):
        data[i] ^= 0x5A
    dst.write_bytes(bytes(data))


def test_a_corrupt_checkpoint_is_refused_wherever_it_is_loaded(make_cfg, trained_ckpt, tmp_path):
    bad = tmp_path / "corrupt.ckpt"
    _flip_conv_bytes(trained_ckpt, bad)
    expected = f"checkpoint '{bad}' is corrupt: its weights do not match the checksum"
    with pytest.raises(ValueError, match=expected):
        evaluate(make_cfg("train=false", f"ckpt_path={bad}", run="evaluate"))
    with pytest.raises(ValueError, match=expected):
        TorchPredictor.from_checkpoint(bad, device="cpu")
    with pytest.raises(ValueError, match=expected):
        train(make_cfg(f"ckpt_path={bad}", run="resume"))


@pytest.mark.parametrize(
    ("content", "problem"),
    [(b"", "is empty (0 bytes)"), (b"not a checkpoint\n" * 20, "is not a readable checkpoint")],
)
def test_an_empty_or_foreign_file_gets_a_message_that_names_it(
    make_cfg, tmp_path, content, problem
):
    path = tmp_path / "x.ckpt"
    path.write_bytes(content)
    with pytest.raises(ValueError) as error:
        evaluate(make_cfg("train=false", f"ckpt_path={path}"))
    message = str(error.value)
    assert f"checkpoint '{path}' {problem}" in message
    assert "weights_only" not in message and "another checkpoint" in message
    with pytest.raises(ValueError, match=re.escape(problem)):
        TorchPredictor.from_checkpoint(path, device="cpu")


def test_a_checkpoint_without_a_checksum_loads_with_a_warning(trained_ckpt, tmp_path):
    checkpoint = torch.load(trained_ckpt, map_location="cpu", weights_only=True)
    assert checkpoint.pop("checksum", None) is not None  # every checkpoint we write has one
    old = tmp_path / "old.ckpt"
    torch.save(checkpoint, old)
    with pytest.warns(UserWarning, match=f"checkpoint '{old}' has no checksum"):
        predictor = TorchPredictor.from_checkpoint(old, device="cpu")
    weights = predictor.module.state_dict()
    net = {k: v for k, v in checkpoint["state_dict"].items() if k.startswith("net.")}
    assert net and all(torch.equal(weights[k], v) for k, v in net.items())  # the network


def test_a_killed_saves_temporary_file_is_removed_by_the_next_save(make_cfg, tmp_path):
    folder = tmp_path / "run" / "checkpoints"
    folder.mkdir(parents=True)
    leftover = folder / ".last.ckpt.0badc0de.tmp"  # kill -9 during a save
    leftover.write_bytes(b"half a checkpoint")
    train(make_cfg("logger=none", "~callbacks.lr_monitor", "~callbacks.augmented_samples"))
    assert not leftover.exists() and (folder / "last.ckpt").is_file()
