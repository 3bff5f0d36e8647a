"""The checkpoint backend: eager PyTorch on a trained network (CPU or GPU), with the eval
transform it was trained with (torchvision). A checkpoint is loaded without Lightning
(:class:`~braintumor.inference.trained_model.TrainedModel`); an ``MRIClassifier`` in memory
(evaluation) works too."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from braintumor.errors import UsageError
from braintumor.inference.predictor import Predictor
from braintumor.models.tta import views


def resolve_device(device: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; anything else as ``torch.device``."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise UsageError(
            f"device={device} is not a device: use auto, cpu, cuda or cuda:<index>."
        ) from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"device={device} was asked for, but CUDA is not available here.")
    return resolved


class TorchPredictor(Predictor):
    """Eager PyTorch on a module with ``net``, ``preprocessing`` and ``calibration``."""

    backend = "pytorch"

    def __init__(self, module: torch.nn.Module, device: str = "auto") -> None:
        super().__init__(module.preprocessing.to_dict())
        self.preprocessing = module.preprocessing
        self.transform = self.preprocessing.eval_transform()
        self.device = resolve_device(device)
        self.module = module.to(self.device).eval()
        self.calibration = dict(getattr(module, "calibration", {}) or {})

    @classmethod
    def from_checkpoint(
        cls, path: str | Path, device: str = "auto", threads: int | None = None
    ) -> TorchPredictor:
        """The checkpoint's module (verified against its checksum) on ``device``."""
        from braintumor.inference.trained_model import TrainedModel

        if threads:
            torch.set_num_threads(threads)
        return cls(TrainedModel.from_checkpoint(path), device)

    def preprocess(self, images: Sequence[Any]) -> torch.Tensor:
        """``uint8`` images (arrays or tensors) -> the normalized batch, by the training
        code's own eval transform."""
        return torch.stack([self.transform(torch.as_tensor(np.asarray(i))) for i in images])

    def views(self, batch: torch.Tensor) -> torch.Tensor:
        return views(batch, self.tta)

    @torch.inference_mode()
    def logits(self, batch: torch.Tensor) -> np.ndarray:
        batch = torch.as_tensor(batch)
        return self.module(batch.to(self.device, non_blocking=True)).float().cpu().numpy()

    def probabilities(self, batch: torch.Tensor) -> np.ndarray:
        """``softmax(logits / T)`` of a preprocessed batch (no test-time augmentation)."""
        return self._calibrated(self.logits(batch)[None].astype(np.float64))
