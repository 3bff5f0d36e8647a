"""The ONNX backend: ONNX Runtime on an exported model, with numpy/PIL preprocessing and the
settings of its JSON sidecar. Imports no PyTorch: a cold ``predict`` takes a second."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from braintumor.errors import UsageError
from braintumor.inference.predictor import Predictor, sidecar_path

EXPORT = "`python -m braintumor export ckpt=...`"


class OnnxPredictor(Predictor):
    """ONNX Runtime on an exported model (outputs ``probabilities`` and, since the graph
    carries them, ``logits``: the out-of-distribution energy needs them)."""

    backend = "onnxruntime"

    def __init__(self, path: str | Path, device: str = "auto", threads: int | None = None) -> None:
        import onnxruntime as ort

        path = Path(path)
        sidecar = sidecar_path(path)
        if not sidecar.is_file():
            raise FileNotFoundError(
                f"'{path}' has no sidecar '{sidecar}' (class names and preprocessing): export "
                f"with {EXPORT}, which writes both."
            )
        try:
            self.metadata: dict[str, Any] = json.loads(sidecar.read_text())
            super().__init__(self.metadata)
        except (ValueError, TypeError, AttributeError) as error:  # bad JSON, keys, values
            raise UsageError(
                f"sidecar '{sidecar}' of '{path}' is not usable ({error}): export again with "
                f"{EXPORT}."
            ) from None
        self.calibration = dict(self.metadata.get("calibration") or {})
        providers = ["CPUExecutionProvider"]
        if device not in ("cpu", "auto") and not device.startswith("cuda"):
            raise UsageError(f"device={device}: use auto, cpu or cuda with an ONNX file.")
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
                f"{EXPORT} and ship it with its sidecar."
            ) from None
        self.input_name = self.session.get_inputs()[0].name
        outputs = [o.name for o in self.session.get_outputs()]
        self.has_logits = "logits" in outputs  # graphs exported before it: probabilities only
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
                f"export both again with {EXPORT}."
            )

    def _output_width(self) -> int | str:
        """Columns of the output: from the graph when static, else from one run on zeros."""
        shape = self.session.get_outputs()[0].shape
        if len(shape) == 2 and isinstance(shape[1], int):
            return shape[1]
        try:
            zeros = np.zeros((1, self.channels, self.image_size, self.image_size), np.float32)
            output = self.probabilities(zeros)
        except Exception:  # the graph refuses the sidecar's input shape
            return "?"
        return output.shape[1] if output.ndim == 2 else f"shape {list(output.shape)} of"

    def _run(self, batch: Any) -> list[np.ndarray]:
        array = np.ascontiguousarray(np.asarray(batch), dtype=np.float32)
        return self.session.run(None, {self.input_name: array})

    def probabilities(self, batch: Any) -> np.ndarray:
        """The graph's ``probabilities`` output: ``softmax(logits / T)`` (no test-time
        augmentation)."""
        return self._run(batch)[0]

    def logits(self, batch: Any) -> np.ndarray:
        outputs = self._run(batch)
        if self.has_logits:
            return outputs[1]
        return np.log(np.clip(outputs[0].astype(np.float64), 1e-45, None))  # up to a constant
