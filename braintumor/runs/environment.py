"""``environment.json``: what a run ran on — library versions, the code's git commit (and
whether the tree had uncommitted changes), the machine, and the fully resolved config."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from braintumor.atomic import write_atomically
from braintumor.runs.layout import RunDir

PACKAGES = ("braintumor", "torch", "torchvision", "lightning", "torchmetrics", "hydra-core",
            "numpy", "scikit-learn", "onnxruntime")  # fmt: skip
SOURCE = Path(__file__).resolve().parents[1]


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def git_state(folder: Path = SOURCE) -> dict[str, Any]:
    """``commit`` and ``dirty`` of the git checkout holding the code (``None`` outside one)."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True,
                                  text=True, timeout=10, check=True)  # fmt: skip
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip()

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "dirty": None}
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def environment(config_values: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Versions, git state, machine and the resolved config (``config_values``, plain values)."""
    info: dict[str, Any] = {
        "versions": {name: _version(name) for name in PACKAGES},
        "python": sys.version.split()[0],
        "git": git_state(),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.machine(),
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "cuda": torch.version.cuda if torch.cuda.is_available() else None,
            "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
        },
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
    }
    if config_values is not None:
        info["config"] = dict(config_values)
    return info


def write_environment(run_dir: Path, config_values: Mapping[str, Any] | None = None) -> Path:
    """Write ``run_dir/environment.json`` (atomically); return its path."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = RunDir(run_dir).environment
    write_atomically(path, json.dumps(environment(config_values), indent=2, default=str) + "\n")
    return path
