"""Load a trained model (Lightning checkpoint or exported ONNX file) and turn images into
class probabilities with the model's own eval preprocessing.

Both backends expose the same small interface, so ``predict``, the web app and the latency
benchmark do not care which one they hold. Checkpoints are pickles: load them only from
sources you trust; the ONNX file + JSON sidecar is the format to deploy.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch

from braintumor.data.image import load_image
from braintumor.data.preprocessing import Preprocessing
from braintumor.errors import UsageError
from braintumor.models.tta import views

MAX_PIXELS = 40_000_000  # larger scans are refused before decoding (decompression bombs)


def sidecar_path(onnx_path: str | Path) -> Path:
    """The JSON sidecar of an ONNX file: ``model.onnx`` -> ``model.json``."""
    return Path(onnx_path).with_suffix(".json")


def resolve_device(device: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; anything else as ``torch.device``."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"device={device} was asked for, but CUDA is not available here.")
    return resolved


class Predictor:
    """Images -> probabilities. Subclasses implement :meth:`probabilities`.

    Parameters
    ----------
    preprocessing : the model's :class:`~braintumor.data.preprocessing.Preprocessing` (or
        the dict a checkpoint or sidecar stores).
    """

    backend = "?"

    def __init__(self, preprocessing: Preprocessing | Mapping[str, Any]) -> None:
        if not isinstance(preprocessing, Preprocessing):
            preprocessing = Preprocessing.from_dict(preprocessing)
        self.preprocessing = preprocessing
        self.class_names: list[str] = list(preprocessing.class_names)
        self.channels = preprocessing.channels
        self.image_size = preprocessing.image_size
        self.transform = preprocessing.eval_transform()
        # the temperature and abstention threshold fitted after training (empty: none)
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

    def predict_batch(self, batch: torch.Tensor) -> np.ndarray:
        """Calibrated probabilities of a preprocessed batch, with the model's test-time
        augmentation: the views' log-probabilities (logits up to a constant) are averaged."""
        if self.tta == "none":
            return self.probabilities(batch)
        probs = self.probabilities(views(batch, self.tta))
        logs = np.log(np.clip(probs, 1e-45, None)).reshape(-1, len(batch), probs.shape[1])
        mean = logs.mean(0)
        exp = np.exp(mean - mean.max(1, keepdims=True))
        return exp / exp.sum(1, keepdims=True)

    def abstains(self, probs: np.ndarray) -> np.ndarray:
        """Per row of calibrated probabilities: whether the model should refer the image."""
        if self.threshold is None:
            return np.zeros(len(probs), dtype=bool)
        return np.asarray(probs).max(1) < self.threshold

    def load(self, path: str | Path | BinaryIO) -> torch.Tensor:
        """Decode an image file or file object (any mode) to ``uint8`` ``(C, H, W)``; images of
        more than :data:`MAX_PIXELS` pixels are refused (``ValueError``) before decoding."""
        return load_image(path, self.channels, max_pixels=MAX_PIXELS)

    def preprocess(self, images: Sequence[torch.Tensor]) -> torch.Tensor:
        """``uint8`` images of any sizes -> one normalized ``(N, C, S, S)`` float batch."""
        return torch.stack([self.transform(image) for image in images])

    def probabilities(self, batch: torch.Tensor) -> np.ndarray:
        """A preprocessed batch -> ``(N, num_classes)`` softmax probabilities."""
        raise NotImplementedError

    def predict_images(self, images: Sequence[torch.Tensor]) -> np.ndarray:
        """``uint8`` images -> calibrated probabilities."""
        return self.predict_batch(self.preprocess(images))


class TorchPredictor(Predictor):
    """Eager PyTorch on a :class:`~braintumor.training.module.MRIClassifier` (CPU or GPU)."""

    backend = "pytorch"

    def __init__(self, module: torch.nn.Module, device: str = "auto") -> None:
        super().__init__(module.preprocessing)
        self.device = resolve_device(device)
        self.module = module.to(self.device).eval()
        self.calibration = dict(getattr(module, "calibration", {}) or {})

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "auto") -> TorchPredictor:
        from braintumor.training.module import (
            MRIClassifier,  # Lightning is only needed for checkpoints
        )

        return cls(MRIClassifier.from_checkpoint(path), device)  # verified against its checksum

    @torch.inference_mode()
    def probabilities(self, batch: torch.Tensor) -> np.ndarray:
        logits = self.module(batch.to(self.device, non_blocking=True))
        return (logits.float() / self.temperature).softmax(dim=1).cpu().numpy()


class OnnxPredictor(Predictor):
    """ONNX Runtime on an exported model; the preprocessing comes from its JSON sidecar."""

    backend = "onnxruntime"

    def __init__(self, path: str | Path, device: str = "auto", threads: int | None = None) -> None:
        import onnxruntime as ort

        path = Path(path)
        sidecar = sidecar_path(path)
        if not sidecar.is_file():
            raise FileNotFoundError(
                f"'{path}' has no sidecar '{sidecar}' (class names and preprocessing): export "
                "with `python -m braintumor export ckpt=...`, which writes both."
            )
        try:
            self.metadata: dict[str, Any] = json.loads(sidecar.read_text())
            super().__init__(self.metadata)
        except (ValueError, TypeError) as error:  # bad JSON, missing or malformed keys
            raise UsageError(
                f"sidecar '{sidecar}' of '{path}' is not usable ({error}): export again with "
                "`python -m braintumor export ckpt=...`."
            ) from None
        self.calibration = dict(self.metadata.get("calibration") or {})  # inside the graph
        providers = ["CPUExecutionProvider"]
        if device != "cpu" and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as error:  # onnxruntime raises its own types for bad files
            reason = " ".join(str(error).split())[:200]
            raise UsageError(
                f"'{path}' is not a readable ONNX file ({reason}): export it again with "
                "`python -m braintumor export ckpt=...` and ship it with its sidecar."
            ) from None
        self.input_name = self.session.get_inputs()[0].name
        self._check_against_sidecar(path, sidecar)

    def _check_against_sidecar(self, path: Path, sidecar: Path) -> None:
        """Refuse a graph whose input (channels, size) or output width (number of classes)
        disagrees with the sidecar: the class names would be read from the wrong list."""
        problems = []
        shape = list(self.session.get_inputs()[0].shape)
        expected = ["N", self.channels, self.image_size, self.image_size]
        if len(shape) != 4 or any(
            isinstance(got, int) and got != want
            for got, want in zip(shape[1:], expected[1:], strict=True)
        ):
            problems.append(f"the model takes input {shape}, the sidecar says {expected}")
        width = self._output_width()
        if width != len(self.class_names):
            problems.append(
                f"the model outputs {width} class probabilities, the sidecar names "
                f"{len(self.class_names)} classes"
            )
        if problems:
            raise UsageError(
                f"'{path}' and its sidecar '{sidecar}' do not belong together: "
                f"{'; '.join(problems)}. Put the sidecar exported with this model beside it, or "
                "export both again with `python -m braintumor export ckpt=...`."
            )

    def _output_width(self) -> int | str:
        """Columns of the output: from the graph when static, else from one run on zeros."""
        shape = self.session.get_outputs()[0].shape
        if len(shape) == 2 and isinstance(shape[1], int):
            return shape[1]
        try:
            zeros = torch.zeros(1, self.channels, self.image_size, self.image_size)
            output = self.probabilities(zeros)
        except Exception:  # the graph refuses the sidecar's input shape
            return "?"
        return output.shape[1] if output.ndim == 2 else f"shape {list(output.shape)} of"

    def probabilities(self, batch: torch.Tensor) -> np.ndarray:
        array = np.ascontiguousarray(batch.numpy(), dtype=np.float32)
        return self.session.run(None, {self.input_name: array})[0]


def load_predictor(path: str | Path, device: str = "auto", threads: int | None = None) -> Predictor:
    """A :class:`TorchPredictor` for ``*.ckpt``, an :class:`OnnxPredictor` for ``*.onnx``.

    ``threads``: CPU threads for inference (``None``: the library's default). On a busy or
    small machine, 1 thread is often much faster for single images (docs/benchmarks.md).
    """
    if threads:
        torch.set_num_threads(threads)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file '{path}' does not exist (expected .ckpt or .onnx).")
    if path.suffix == ".onnx":
        return OnnxPredictor(path, device, threads)
    if path.suffix == ".ckpt":
        return TorchPredictor.from_checkpoint(path, device)
    raise UsageError(f"'{path}': expected a Lightning checkpoint (.ckpt) or an ONNX file (.onnx).")
