"""Every recipe in conf/experiment/ and conf/hparams_search/ composes, instantiates and runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate

from braintumor.pipeline.build import trainer_precision
from tests.conftest import CONF_DIR, FAST, ROOT, compose_config

EXPERIMENTS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))
SEARCHES = sorted(p.stem for p in (CONF_DIR / "hparams_search").glob("*.yaml"))


def test_the_issue_recipes_exist():
    assert {"baseline_cnn", "quick_cpu"} <= set(EXPERIMENTS)
    assert "cnn_optuna" in SEARCHES
    for name in EXPERIMENTS + SEARCHES:
        folder = "experiment" if name in EXPERIMENTS else "hparams_search"
        text = (CONF_DIR / folder / f"{name}.yaml").read_text()
        assert text.startswith("# @package _global_\n# "), f"{name}: package line + comment"


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_composes_and_instantiates(name, tiny_root, tmp_path):
    cfg = compose_config(tmp_path / "run", [f"experiment={name}", f"data.root={tiny_root}"])
    GlobalHydra.instance().clear()
    assert cfg.model.net._target_ and cfg.trainer.max_epochs >= 1
    augment = instantiate(cfg.augment)
    assert isinstance(augment.transforms(cfg.data.image_size), list)
    precision = trainer_precision(cfg.trainer.precision, cfg.trainer.accelerator)
    trainer = instantiate(cfg.trainer, logger=False, enable_checkpointing=False,
                          precision=precision)  # fmt: skip
    assert trainer.max_epochs == cfg.trainer.max_epochs
    if name == "baseline_cnn":  # the original recipe: BN + dropout CNN, Adam, cross-entropy
        assert cfg.model.net._target_.endswith("MRICNN") and cfg.model.net.dropout > 0
        assert cfg.model.optimizer._target_ == "torch.optim.Adam"
        assert cfg.model.label_smoothing == 0.0 and augment.transforms(cfg.data.image_size)
    if name.startswith("transfer_"):  # one parameterized recipe, its network by name
        assert cfg.model.net.name == name.removeprefix("transfer_") and cfg.model.net.pretrained


@pytest.mark.parametrize("name", SEARCHES)
def test_hparams_search_composes_with_a_resumable_sqlite_study(name, compose):
    cfg = compose([f"hparams_search={name}"], hydra=True)
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_.endswith("ResumableOptunaSweeper")
    assert sweeper.storage.startswith("sqlite:///") and sweeper.storage.endswith("/optuna.db")
    assert "${now:" not in str(cfg.hydra.sweep.dir)  # same command, same folder: resumable
    swept = set(sweeper.params)
    assert {"model.optimizer.lr", "model.optimizer.weight_decay", "model.net.dropout",
            "data.batch_size", "data.image_size", "augment",
            "model.net.width_multiplier"} <= swept  # fmt: skip
    assert cfg.optimized_metric == "val/f1_macro_best" and sweeper.direction == "maximize"


def _glob_run(tmp_path: Path, name: str, overrides: list[str]) -> list[dict]:
    out = tmp_path / name
    cmd = [sys.executable, str(ROOT / "train.py"), "-m", *overrides, "++trainer.fast_dev_run=true",
           f"paths.log_dir={out}", f"paths.cache_dir={tmp_path / 'cache'}",
           f"hydra.sweep.dir={out / 'sweep'}"]  # fmt: skip
    result = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    infos = [json.loads(p.read_text()) for p in sorted((out / "sweep").glob("*/run_info.json"))]
    return infos


@pytest.mark.slow
def test_every_experiment_runs_under_fast_dev_run(tiny_root, tmp_path):
    """``python train.py -m 'experiment=glob(*)' ++trainer.fast_dev_run=true``, offline: every
    model takes ``model.net.pretrained=false`` (the transfer recipes start from ImageNet)."""
    small = [f for f in FAST if not f.startswith("model.net.")]
    infos = _glob_run(
        tmp_path,
        "all",
        [
            "experiment=glob(*,exclude=leave_one_source_out)",  # needs several sets: its own test
            "data=folder",
            f"data.root={tiny_root}",
            "model.net.pretrained=false",
            *small,
        ],
    )
    ran = [i["overrides"][0].removeprefix("experiment=") for i in infos]
    assert sorted(ran) == [e for e in EXPERIMENTS if e != "leave_one_source_out"]
    assert all(i["status"] == "completed" for i in infos), [i.get("error") for i in infos]
