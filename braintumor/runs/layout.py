"""``RunDir``: the layout of a run folder, named once.

::

    <run>/
      run_info.json  environment.json  split.csv  skipped_images.csv  train.log
      .hydra/        the composed config and the overrides
      checkpoints/   epoch_NNN.ckpt (best), last.ckpt, step.ckpt, interrupted.ckpt
      reports/       {val,test}_metrics.json, classification reports, confusion matrices
      tensorboard/   the curves
      export/        <checkpoint>.onnx + .json sidecar + model card (python -m braintumor export)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunDir:
    """A run folder; its files by name."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @classmethod
    def of_checkpoint(cls, ckpt: str | Path) -> RunDir | None:
        """The run a checkpoint was saved in (``<run>/checkpoints/x.ckpt``), else ``None``."""
        folder = Path(ckpt).resolve().parent
        return cls(folder.parent) if folder.name == "checkpoints" else None

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def tensorboard(self) -> Path:
        return self.root / "tensorboard"

    @property
    def export(self) -> Path:
        return self.root / "export"

    @property
    def run_info(self) -> Path:
        return self.root / "run_info.json"

    @property
    def environment(self) -> Path:
        return self.root / "environment.json"

    @property
    def split_csv(self) -> Path:
        return self.root / "split.csv"

    @property
    def skipped_images(self) -> Path:
        return self.root / "skipped_images.csv"

    @property
    def overrides(self) -> Path:
        return self.root / ".hydra" / "overrides.yaml"

    @property
    def config(self) -> Path:
        """Hydra's record of the run's composed config."""
        return self.root / ".hydra" / "config.yaml"

    def metrics(self, split: str) -> Path:
        """``reports/<split>_metrics.json``."""
        return self.reports / f"{split}_metrics.json"
