"""What a run records about itself is true: its status, its checkpoint, its own folder."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from datetime import datetime

import pytest

from braintumor.runs.record import read_run_info, recorded_run, write_run_info
from tests.conftest import FAST, ROOT, compose_train


def test_an_evaluation_is_recorded_completed_and_names_its_checkpoint(
    tiny_root, trained_ckpt, tmp_path
):
    run_dir = tmp_path / "evaluation"
    cmd = [sys.executable, str(ROOT / "train.py"), "train=false", f"ckpt_path={trained_ckpt}",
           "data=folder", f"data.root={tiny_root}", f"hydra.run.dir={run_dir}",
           f"paths.cache_dir={tmp_path / 'cache'}", *FAST, "logger=none"]  # fmt: skip
    result = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    info = read_run_info(run_dir)
    assert info["status"] == "completed", info.get("error")
    assert info["metrics"]["test/f1_macro"] is not None
    for split in ("val", "test"):
        report = json.loads((run_dir / "reports" / f"{split}_metrics.json").read_text())
        assert report["checkpoint"] == str(trained_ckpt)


class _SameSecond:
    """``datetime`` whose ``now()`` stays within one second, one microsecond per call."""

    calls = 0

    @classmethod
    def now(cls) -> datetime:
        cls.calls += 1
        return datetime(2024, 5, 17, 10, 11, 12, cls.calls)


def _run_dir() -> str:
    return str(compose_train(hydra=True).hydra.run.dir)


def test_runs_started_in_the_same_second_get_their_own_folders(monkeypatch):
    import hydra.core.utils

    monkeypatch.setattr(hydra.core.utils, "datetime", _SameSecond)
    first, second = _run_dir(), _run_dir()
    assert "2024-05-17" in first and "10-11-12" in first
    assert first != second


def test_a_folder_another_live_run_is_writing_to_is_refused(tmp_path):
    run_dir = tmp_path / "run"
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        info = {"status": "running", "host": socket.gethostname(), "pid": other.pid}
        write_run_info(run_dir, info)
        with (
            pytest.raises(FileExistsError) as error,
            recorded_run(run_dir, [], "val/f1_macro_best"),
        ):
            pytest.fail("the run started")
        message = str(error.value)
        assert f"'{run_dir / 'run_info.json'}'" in message and f"pid {other.pid}" in message
        assert "hydra.run.dir" in message
        assert read_run_info(run_dir) == info  # the other run's record is left alone
    finally:
        other.kill()
        other.wait()
    # the same folder once that run is gone (killed: resume in place with ckpt_path=last)
    with recorded_run(run_dir, ["ckpt_path=last"], "val/f1_macro_best") as record:
        record.finish({"val/f1_macro_best": 0.5})
    assert read_run_info(run_dir)["status"] == "completed"
    assert read_run_info(run_dir)["pid"] == os.getpid()
