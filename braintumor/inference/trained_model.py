"""The network of a braintumor checkpoint and what predicting with it needs (preprocessing,
calibration, Grad-CAM layer), loaded without Lightning: the checkpoint path of ``predict``,
``export`` and the web page imports torch and torchvision only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from braintumor.data.preprocessing import Preprocessing
from braintumor.models.factory import build_model, without_initial_weights
from braintumor.runs.checkpoint_file import read_checkpoint

PREFIX = "net."  # the network's weights in a checkpoint of MRIClassifier


class TrainedModel(nn.Module):
    """``net`` with ``preprocessing``, ``calibration`` and ``hparams`` (``gradcam_layer``): the
    interface :class:`~braintumor.training.module.MRIClassifier` offers for prediction."""

    def __init__(
        self,
        net: nn.Module,
        preprocessing: Preprocessing,
        calibration: dict[str, Any] | None = None,
        gradcam_layer: str | None = None,
    ) -> None:
        super().__init__()
        self.net = net
        self.preprocessing = preprocessing
        self.calibration = dict(calibration or {})
        self.hparams = {"gradcam_layer": gradcam_layer}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    @classmethod
    def from_checkpoint(cls, path: str | Path) -> TrainedModel:
        """The model saved in ``path`` (on the CPU), its weights verified against the
        checkpoint's checksum."""
        found = read_checkpoint(path)
        hparams = found.hyper_parameters
        net = build_model(
            without_initial_weights(hparams["net"]),
            found.preprocessing.num_classes,
            found.preprocessing.channels,
        )
        state = found.state_dict
        net.load_state_dict({k[len(PREFIX) :]: v for k, v in state.items() if k.startswith(PREFIX)})
        layer = hparams.get("gradcam_layer")
        if layer is None and getattr(net, "gradcam_layer", None):
            layer = f"net.{net.gradcam_layer}"
        return cls(net, found.preprocessing, dict(found.calibration), layer).eval()
