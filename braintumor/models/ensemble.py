"""``Ensemble``: several trained networks answering as one.

Its output is the log of the mean of the members' calibrated probabilities (each member's
logits divided by its own temperature), shifted per image by the mean of the members'
``logsumexp``: a softmax of it is exactly the mean probability (the shift is a constant per
row, which a softmax ignores, so a temperature fitted on the ensemble scales the mean), and
its energy (``-logsumexp``) is the members' mean energy, which the out-of-distribution check
reads. One module, so checkpoints, ONNX export (one graph), Grad-CAM, predict and the page
treat an ensemble like any network.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from braintumor.models.factory import build_model, without_initial_weights


class Ensemble(nn.Module):
    """The members of ``members`` (network configs, as checkpoints store them), each with
    its temperature; built without initial weights (a checkpoint's state dict fills them)."""

    def __init__(
        self,
        num_classes: int,
        in_channels: int,
        members: Sequence[Mapping[str, Any]],
        temperatures: Sequence[float],
    ) -> None:
        super().__init__()
        if len(members) < 2 or len(members) != len(temperatures):
            raise ValueError(
                f"an ensemble needs at least 2 members, each with a temperature; got "
                f"{len(members)} members and {len(temperatures)} temperatures."
            )
        self.members = nn.ModuleList(
            build_model(without_initial_weights(m), num_classes, in_channels) for m in members
        )
        self.register_buffer("temperatures", torch.tensor([float(t) for t in temperatures]))

    def member_logits(self, x: torch.Tensor) -> torch.Tensor:
        """``(M, N, K)``: each member's logits divided by its temperature."""
        return torch.stack(
            [m(x).float() / t for m, t in zip(self.members, self.temperatures, strict=True)]
        )

    def member_probabilities(self, x: torch.Tensor) -> torch.Tensor:
        """``(M, N, K)``: each member's calibrated probabilities."""
        return self.member_logits(x).softmax(-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scaled = self.member_logits(x)
        mean = scaled.softmax(-1).mean(0)
        shift = torch.logsumexp(scaled, -1).mean(0, keepdim=True).T  # (N, 1)
        return torch.log(mean.clamp_min(1e-30)) + shift
