"""The ONNX graph of a checkpoint's network: written with ``torch.onnx`` (calibrated
probabilities and raw logits as outputs) and checked against eager PyTorch."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from braintumor.atomic import write_atomically
from braintumor.inference.onnx_predictor import OnnxPredictor
from braintumor.inference.predictor import sidecar_path
from braintumor.inference.torch_predictor import TorchPredictor
from braintumor.softmax import softmax_tensor


class _Probabilities(nn.Module):
    """The network followed by a softmax of its logits divided by the checkpoint's fitted
    temperature: the calibrated probabilities the exported graph computes, and the logits
    (for the out-of-distribution energy)."""

    def __init__(self, net: nn.Module, temperature: float = 1.0) -> None:
        super().__init__()
        self.net = net
        self.temperature = float(temperature)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.net(image)
        return softmax_tensor(logits, self.temperature), logits


def export_onnx(
    module: nn.Module, out: str | Path, opset: int = 18, extra: dict[str, Any] | None = None
) -> Path:
    """Write ``module``'s net (+ softmax) as ONNX with a dynamic batch axis, and its sidecar."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    prep = module.preprocessing
    calibration = dict(getattr(module, "calibration", {}) or {})
    model = _Probabilities(module.net, calibration.get("temperature", 1.0)).eval().cpu()
    example = torch.zeros(2, prep.channels, prep.image_size, prep.image_size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # exporter chatter about its own internals
        torch.onnx.export(
            model, (example,), str(out), input_names=["image"],
            output_names=["probabilities", "logits"],
            opset_version=opset, dynamo=True, external_data=False, verbose=False,
            dynamic_shapes={"image": {0: torch.export.Dim("batch", min=1, max=4096)}},
        )  # fmt: skip
    meta = {
        **prep.to_dict(),
        "opset": opset,
        "input": "image",
        "output": "probabilities",
        "outputs": ["probabilities", "logits"],
        "gradcam_layer": module.hparams.get("gradcam_layer"),
        "calibration": calibration,  # the temperature is applied inside the graph too
        "torch": torch.__version__,
        **(extra or {}),
    }
    write_atomically(sidecar_path(out), json.dumps(meta, indent=2) + "\n")
    return out


def check_parity(
    torch_predictor: TorchPredictor, onnx_predictor: OnnxPredictor, batch: int = 8, seed: int = 0
) -> float:
    """Max absolute difference of probabilities between the two on one random batch."""
    size, channels = torch_predictor.image_size, torch_predictor.channels
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, channels, size, size, generator=generator)
    expected = torch_predictor.probabilities(x)
    got = onnx_predictor.probabilities(x)
    return float(np.abs(expected - got).max())
