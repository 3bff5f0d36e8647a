"""Which predictor for which model file: an exported ONNX file (``.onnx``) is served by
:class:`~braintumor.inference.onnx_predictor.OnnxPredictor`, which never imports PyTorch; a
Lightning checkpoint (``.ckpt``) by
:class:`~braintumor.inference.torch_predictor.TorchPredictor`. Each is imported only when its
kind of file is loaded."""

from __future__ import annotations

from pathlib import Path

from braintumor.errors import UsageError
from braintumor.inference.predictor import Predictor


def load_predictor(path: str | Path, device: str = "auto", threads: int | None = None) -> Predictor:
    """A ``TorchPredictor`` for ``*.ckpt``, an ``OnnxPredictor`` for ``*.onnx`` (which never
    imports PyTorch).

    ``threads``: CPU threads for inference (``None``: the library's default). On a busy or
    small machine, 1 thread is often much faster for single images (docs/benchmarks.md).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file '{path}' does not exist (expected .ckpt or .onnx).")
    if path.suffix == ".onnx":
        from braintumor.inference.onnx_predictor import OnnxPredictor

        return OnnxPredictor(path, device, threads)
    if path.suffix == ".ckpt":
        from braintumor.inference.torch_predictor import TorchPredictor

        return TorchPredictor.from_checkpoint(path, device, threads)
    raise UsageError(f"'{path}': expected a Lightning checkpoint (.ckpt) or an ONNX file (.onnx).")
