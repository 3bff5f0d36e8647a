"""Shared by the benchmarks: the machine's description, the default model, the results file."""

from __future__ import annotations

import os
import platform
import statistics
from datetime import datetime, timezone
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "benchmarks.md"


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else the architecture."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def header(title: str, notes: list[str]) -> list[str]:
    """A section title with the date, machine, CPU count, load and versions, then notes."""
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return [
        f"## {title}, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC",
        "",
        f"- machine: {cpu_name()}, {platform.machine()}, {os.cpu_count()} CPUs, load average "
        f"at start {load} (1/5/15 min; other jobs share this machine)",
        f"- torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"python {platform.python_version()}",
        *[f"- {note}" for note in notes],
        "",
    ]


def compose_train(overrides: list[str] = ()) -> DictConfig:
    """``conf/train.yaml`` composed with ``overrides`` as ``train.py`` would (``${hydra:...}``
    interpolations resolve), without the ``hydra`` node."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="train", overrides=list(overrides), return_hydra_config=True)
    HydraConfig().set_config(cfg)
    with open_dict(cfg):
        del cfg.hydra
    return cfg


def build_classifier(cfg: DictConfig, num_classes: int, **changes):
    """The ``MRIClassifier`` of ``cfg.model`` for ``num_classes`` classes of ``cfg.data`` (its
    network built by :func:`braintumor.models.build_model`, as in training)."""
    from braintumor.data.preprocessing import Preprocessing
    from braintumor.training.module import MRIClassifier

    data = cfg.data
    prep = Preprocessing.build(
        [f"class {i}" for i in range(num_classes)],
        data.image_size,
        data.channels,
        data.mean,
        data.std,
    ).to_dict()
    model = OmegaConf.to_container(cfg.model, resolve=True)
    model = {k: v for k, v in model.items() if k not in ("_target_", "normalization")}
    model.update(changes)
    return MRIClassifier(preprocessing=prep, **model)


def median(values: list[float]) -> float:
    return statistics.median(values)


def append(lines: list[str], out: Path = RESULTS) -> None:
    """Print ``lines`` and append them to ``out`` (docs/benchmarks.md)."""
    text = "\n".join(lines) + "\n"
    print(text)
    with out.open("a") as f:
        f.write("\n" + text)
    print(f"appended to {out}")
