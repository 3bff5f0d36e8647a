"""What a trained model (Lightning checkpoint or exported ONNX file) does with images: turn them
into calibrated class probabilities, with the model's own preprocessing and its
out-of-distribution check (:func:`~braintumor.inference.loading.load_predictor` picks the
backend for a file).

Both backends expose the same small interface, so ``predict``, the web app and the latency
benchmark do not care which one they hold. This module and the ONNX backend import no
PyTorch (numpy, PIL and onnxruntime only: :mod:`braintumor.inference.preprocess`); the
checkpoint backend (:class:`~braintumor.inference.torch_predictor.TorchPredictor`) loads it
when it is used. Checkpoints are pickles: load them only from sources you trust; the ONNX
file + JSON sidecar is the format to deploy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from braintumor.conformal import ConformalScore, prediction_sets
from braintumor.data.preprocessing import per_channel
from braintumor.inference import ood
from braintumor.inference.preprocess import DecodedScan, decode_scan, eval_input, views
from braintumor.softmax import softmax

MAX_PIXELS = 40_000_000  # larger scans are refused before decoding (decompression bombs)
REQUIRED = ("class_names", "image_size", "channels", "mean", "std")


def sidecar_path(onnx_path: str | Path) -> Path:
    """The JSON sidecar of an ONNX file: ``model.onnx`` -> ``model.json``."""
    return Path(onnx_path).with_suffix(".json")


@dataclass(frozen=True)
class Assessment:
    """What a model says of a batch of scans: calibrated ``probabilities`` ``(N, K)``,
    ``abstain`` (below the threshold: "uncertain - refer"), the out-of-distribution
    ``verdicts`` and the ``energy`` of each scan's logits (``None``: not available)."""

    probabilities: np.ndarray
    abstain: np.ndarray
    verdicts: list[ood.OodVerdict]
    energy: np.ndarray | None


class Predictor:
    """Images -> probabilities. Subclasses implement :meth:`logits` (and may replace
    :meth:`preprocess` and :meth:`views` by their own library's).

    Parameters
    ----------
    settings : the preprocessing a checkpoint or sidecar stores (class names, image size,
        channels, mean, std).
    """

    backend = "?"
    has_logits = True  # False: logits() returns log-probabilities (temperature applied)

    def __init__(self, settings: Mapping[str, Any]) -> None:
        missing = [k for k in REQUIRED if k not in settings]
        if missing:
            raise ValueError(f"the preprocessing settings lack {missing}")
        self.class_names: list[str] = [str(n) for n in settings["class_names"]]
        self.image_size = int(settings["image_size"])
        self.channels = int(settings["channels"])
        self.mean = per_channel(settings["mean"], self.channels, "mean")
        self.std = per_channel(settings["std"], self.channels, "std")
        # the temperature, abstention threshold and OOD statistics fitted after training
        self.calibration: dict[str, Any] = {}

    @property
    def temperature(self) -> float:
        return float(self.calibration.get("temperature", 1.0))

    @property
    def threshold(self) -> float | None:
        """Below this top probability the answer is "uncertain - refer" (``None``: always
        answer)."""
        value = self.calibration.get("threshold")
        return None if value is None else float(value)

    @property
    def tta(self) -> str:
        """The test-time augmentation the calibration was fitted with (``none`` without)."""
        return str(self.calibration.get("tta") or "none")

    @property
    def ood(self) -> dict[str, Any] | None:
        """The out-of-distribution statistics (:mod:`braintumor.inference.ood`), if fitted."""
        return self.calibration.get("ood") or None

    @property
    def conformal(self) -> dict[str, Any] | None:
        """The calibration of the conformal prediction sets (``eval.conformal``), if fitted."""
        return self.calibration.get("conformal") or None

    def prediction_sets(self, probs: np.ndarray) -> list[list[str]] | None:
        """Per row of calibrated probabilities, its conformal set (class names, most probable
        first); ``None`` when the model has no sets."""
        stored = self.conformal
        if stored is None:
            return None
        inside = prediction_sets(probs, float(stored["image_threshold"]),
                                 ConformalScore.of(stored))  # fmt: skip
        return [[self.class_names[k] for k in np.argsort(-row, kind="stable") if member[k]]
                for row, member in zip(np.asarray(probs), inside, strict=True)]  # fmt: skip

    # ------------------------------------------------------------------ images -> input
    def read(self, path: str | Path | BinaryIO) -> DecodedScan:
        """Decode an image file or file object (any mode); images of more than
        :data:`MAX_PIXELS` pixels are refused (``ValueError``) before decoding."""
        return decode_scan(path, self.channels, MAX_PIXELS)

    def load(self, path: str | Path | BinaryIO) -> np.ndarray:
        """The ``uint8`` ``(C, H, W)`` pixels of an image file (see :meth:`read`)."""
        return self.read(path).pixels

    def preprocess(self, images: Sequence[Any]) -> Any:
        """``uint8`` images of any sizes -> one normalized ``(N, C, S, S)`` float batch."""
        return np.stack([
            eval_input(np.asarray(i), self.image_size, self.mean, self.std) for i in images
        ])  # fmt: skip

    def views(self, batch: Any) -> Any:
        """The test-time augmentation views of a preprocessed batch, view by view."""
        return views(batch, self.tta)

    def logits(self, batch: Any) -> np.ndarray:
        """A preprocessed batch -> ``(N, num_classes)`` raw logits."""
        raise NotImplementedError

    # ------------------------------------------------------------------ input -> answers
    def _logits_of_views(self, batch: Any) -> np.ndarray:
        """``(V, N, K)``: the logits of each test-time view of each image."""
        n = len(batch)
        x = batch if self.tta == "none" else self.views(batch)
        logits = np.asarray(self.logits(x), dtype=np.float64)
        return logits.reshape(-1, n, logits.shape[-1])

    def predict_batch(self, batch: Any) -> np.ndarray:
        """Calibrated probabilities of a preprocessed batch, with the model's test-time
        augmentation (the views' logits averaged, then divided by the temperature)."""
        return self._calibrated(self._logits_of_views(batch))

    def _calibrated(self, logits: np.ndarray) -> np.ndarray:
        temperature = self.temperature if self.has_logits else 1.0
        return softmax(logits.mean(axis=0), temperature)

    def abstains(self, probs: np.ndarray) -> np.ndarray:
        """Per row of calibrated probabilities: whether the model should refer the image."""
        if self.threshold is None:
            return np.zeros(len(probs), dtype=bool)
        return np.asarray(probs).max(1) < self.threshold

    def predict_images(self, images: Sequence[Any]) -> np.ndarray:
        """``uint8`` images -> calibrated probabilities."""
        return self.predict_batch(self.preprocess(images))

    def assess(self, scans: Sequence[DecodedScan], batch: Any = None) -> Assessment:
        """Probabilities, abstentions and out-of-distribution verdicts of decoded scans
        (``batch``: their preprocessed input, when already made)."""
        batch = self.preprocess([s.pixels for s in scans]) if batch is None else batch
        logits = self._logits_of_views(batch)
        probs = self._calibrated(logits)
        energies = ood.energy(logits[0], self.temperature) if self.has_logits else None
        stats = self.ood
        verdicts = [
            ood.check(
                stats,
                ood.image_features(s.pixels),
                s.colour,
                None if energies is None else float(energies[i]),
            )
            for i, s in enumerate(scans)
        ]
        return Assessment(probs, self.abstains(probs), verdicts, energies)
