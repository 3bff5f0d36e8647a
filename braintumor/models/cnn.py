"""The baseline network: conv blocks with BatchNorm + ReLU + pooling, dropout, linear head."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from braintumor.constraints import Interval, check
from braintumor.models.data_config import DataConfig, data_config


def conv_block(in_channels: int, out_channels: int, convs: int) -> nn.Sequential:
    """``convs`` x (3x3 conv -> BatchNorm -> ReLU), then 2x2 max pooling."""
    layers: list[nn.Module] = []
    for i in range(convs):
        layers += [
            nn.Conv2d(
                in_channels if i == 0 else out_channels, out_channels, 3, padding=1, bias=False
            ),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        ]
    layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


class MRICNN(nn.Module):
    """A BatchNorm + dropout CNN for MRI slices.

    Parameters
    ----------
    num_classes : outputs of the classifier.
    in_channels : 1 for grayscale, 3 for RGB input.
    widths : output channels of each conv block (each block halves the resolution).
    width_multiplier : scales every width (rounded, at least 1): one knob for network width.
    pretrained : must be ``False``: there are no pretrained weights for this network (the
        argument exists so that ``model.net.pretrained=false`` applies to every model).
    convs_per_block : 3x3 convolutions in each block.
    dropout : dropout probability before the classifier.
    """

    def __init__(
        self,
        num_classes: int,
        in_channels: int = 1,
        widths: Sequence[int] = (16, 32, 64, 128, 256),
        convs_per_block: int = 1,
        dropout: float = 0.3,
        width_multiplier: float = 1.0,
        pretrained: bool = False,
    ) -> None:
        super().__init__()
        if not widths:
            raise ValueError("widths must name at least one block.")
        check("model.net", {"dropout": dropout}, {"dropout": Interval(0, 1, closed="left")})
        if pretrained:
            raise ValueError("MRICNN has no pretrained weights: use model.net.pretrained=false.")
        if width_multiplier <= 0:
            raise ValueError(f"width_multiplier must be > 0, got {width_multiplier}.")
        widths = [max(1, round(w * width_multiplier)) for w in widths]
        blocks, previous = [], in_channels
        for width in widths:
            blocks.append(conv_block(previous, width, convs_per_block))
            previous = width
        self.features = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Sequential(
            nn.Flatten(), nn.Dropout(dropout), nn.Linear(previous, num_classes)
        )
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    @staticmethod
    def resolve_data_config(**_: object) -> DataConfig:
        """Any input size, the data's own mean/std: nothing pretrained to match."""
        return data_config()

    def data_config(self) -> DataConfig:
        return self.resolve_data_config()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, in_channels, H, W)`` images -> ``(N, num_classes)`` logits."""
        return self.head(self.pool(self.features(x)))
