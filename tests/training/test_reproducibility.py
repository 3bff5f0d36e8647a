"""Same seed, deterministic mode: identical metrics and split; every run records its setup."""

from __future__ import annotations

import json
import subprocess

import torch

from braintumor.pipeline.train import train
from tests.conftest import ROOT


def _run(make_cfg, run: str) -> dict:
    cfg = make_cfg("seed=3", "trainer.deterministic=true", "trainer.max_epochs=2",
                   "data.batch_size=8", "logger=none", run=run)  # fmt: skip
    return train(cfg)


def test_same_seed_same_weights_metrics_split_and_a_recorded_environment(make_cfg, tmp_path):
    first, second = _run(make_cfg, "a"), _run(make_cfg, "b")
    assert first == second
    saved = [sorted((tmp_path / run / "checkpoints").glob("*.ckpt")) for run in ("a", "b")]
    assert [p.name for p in saved[0]] == [p.name for p in saved[1]] and len(saved[0]) >= 2
    for a, b in zip(*saved, strict=True):
        # every checkpoint, the last one included: the metrics come from the best epoch only
        weights = [torch.load(p, map_location="cpu")["state_dict"] for p in (a, b)]
        assert weights[0].keys() == weights[1].keys()
        assert all(torch.equal(v, weights[1][k]) for k, v in weights[0].items()), a.name
    for name in ("split.csv", "reports/test_metrics.json", "reports/val_metrics.json"):
        a, b = (tmp_path / run / name for run in ("a", "b"))
        if name.endswith(".json"):  # the checkpoint paths differ
            a, b = (
                {k: v for k, v in json.loads(p.read_text()).items() if k != "checkpoint"}
                for p in (a, b)
            )
            assert a == b, name
        else:
            assert a.read_bytes() == b.read_bytes(), name

    env = json.loads((tmp_path / "a" / "environment.json").read_text())
    for package in ("torch", "torchvision", "lightning", "torchmetrics"):
        assert env["versions"][package], package
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True,
                          text=True)  # fmt: skip
    if head.returncode == 0:  # a git checkout (CI clones one)
        assert env["git"]["commit"] == head.stdout.strip()
        assert isinstance(env["git"]["dirty"], bool)
    assert env["config"]["seed"] == 3 and env["config"]["trainer"]["deterministic"] is True
    assert env["deterministic_algorithms"] is True
