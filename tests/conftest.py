"""Shared fixtures: tiny phantom datasets in tmp folders and composed Hydra configs."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

import pytest
import torch
from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from braintumor.data.synthetic import write_synthetic_dataset

ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = ROOT / "conf"


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory) -> Path:
    """4 classes x 16 phantom scans of 40-56 px (shared, read-only)."""
    out = tmp_path_factory.mktemp("tiny") / "classes"
    return write_synthetic_dataset(
        out, num_classes=4, per_class=16, seed=3, min_size=40, max_size=56
    )


@pytest.fixture
def tiny_copy(tiny_root, tmp_path) -> Path:
    """A private copy of the tiny dataset that a test may modify."""
    return Path(shutil.copytree(tiny_root, tmp_path / "data"))


FAST = [
    "data.image_size=32",
    "data.batch_size=16",
    "data.num_workers=0",
    "data.check_images=true",
    "model.net.widths=[8,16]",
    "trainer.max_epochs=1",
    "trainer.accelerator=cpu",
    "trainer.enable_progress_bar=false",
    "trainer.num_sanity_val_steps=0",
    "trainer.log_every_n_steps=1",
    "callbacks.augmented_samples.num_images=4",
]


def compose_train(overrides: Sequence[str] = (), *, hydra: bool = False) -> DictConfig:
    """``conf/train.yaml`` composed with ``overrides`` as ``train.py`` composes it: the one place
    the tests call Hydra's ``initialize_config_dir``/``compose``.

    ``hydra=True`` keeps the ``hydra`` node (run and sweep dirs, launcher, sweeper). A
    misspelled key or option raises Hydra's ``ConfigCompositionException``. Hydra's global
    state is left cleared.
    """
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return hydra_compose("train", overrides=list(overrides), return_hydra_config=hydra)


@pytest.fixture
def compose():
    """``compose(overrides=(), hydra=False)``: :func:`compose_train` for a test."""
    yield compose_train
    GlobalHydra.instance().clear()


def compose_config(output_dir: Path, overrides: Sequence[str] = ()) -> DictConfig:
    """Compose ``conf/train.yaml`` as ``train.py`` would, with the run directory set."""
    cfg = compose_train(overrides, hydra=True)
    HydraConfig().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
        cfg.paths.cache_dir = str(output_dir / "cache")
        del cfg.hydra  # train.py's task function never sees the hydra node either
    output_dir.mkdir(parents=True, exist_ok=True)
    return cfg


@pytest.fixture
def make_cfg(tmp_path, tiny_root):
    """``make_cfg(*overrides)``: a fast config on the tiny dataset, run dir in ``tmp_path``."""

    def make(*overrides: str, root: Path | None = None, run: str = "run") -> DictConfig:
        data = ["data=folder", f"data.root={root or tiny_root}"]
        fast = FAST
        if any(o.startswith("model=") for o in overrides):  # CNN-only knobs would not exist
            fast = [f for f in FAST if not f.startswith("model.net.")]
        return compose_config(tmp_path / run, [*data, *fast, *overrides])

    yield make
    GlobalHydra.instance().clear()


def tensorboard_dir(run_dir: Path) -> Path:
    """The folder of a run's TensorBoard events (``tensorboard/<the run's overrides>``)."""
    return next((run_dir / "tensorboard").rglob("events.out.tfevents.*")).parent


@pytest.fixture(scope="session")
def trained_ckpt(tmp_path_factory, tiny_root) -> Path:
    """The best checkpoint of a real 3-epoch run on the tiny data (for predict/export/app)."""
    from braintumor.pipeline.train import train

    run_dir = tmp_path_factory.mktemp("inference") / "run"
    overrides = ["data=folder", f"data.root={tiny_root}", *FAST, "trainer.max_epochs=3", "seed=1",
                 "model.optimizer.lr=3e-3", "data.batch_size=4", "logger=none",
                 "~callbacks.lr_monitor", "~callbacks.augmented_samples"]  # fmt: skip
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny model: one thread is much faster on a busy 2-core machine
    try:
        train(compose_config(run_dir, overrides))
    finally:
        torch.set_num_threads(threads)
        GlobalHydra.instance().clear()
    return next((run_dir / "checkpoints").glob("epoch_*.ckpt"))


@pytest.fixture(scope="session")
def exported(trained_ckpt, tmp_path_factory) -> tuple[Path, str]:
    """``trained_ckpt`` exported by the export command line: (ONNX path, output)."""
    import contextlib
    import io

    from braintumor.inference.export import main

    out = tmp_path_factory.mktemp("onnx") / "model.onnx"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        main([f"ckpt={trained_ckpt}", f"out={out}"])
    return out, printed.getvalue()


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_serving(process: subprocess.Popen, url: str, seconds: float, what: str) -> dict:
    """Poll ``url/api/info`` until the web page answers (its JSON), failing the test when
    ``process`` exits first or nothing answers within ``seconds``."""
    for _ in range(int(seconds / 0.25)):
        if process.poll() is not None:
            pytest.fail(f"{what} exited early:\n{process.stdout.read()}")
        try:
            with urllib.request.urlopen(url + "/api/info", timeout=2) as response:
                return json.load(response)
        except OSError:
            time.sleep(0.25)
    pytest.fail(f"{what}: nothing answered on {url} within {seconds:g} s")
