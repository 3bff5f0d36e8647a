"""Learning-rate schedules that torch does not ship as one class."""

from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


def warmup_cosine(
    optimizer: Optimizer, max_epochs: int, warmup_epochs: int = 1, min_lr_ratio: float = 0.01
) -> LambdaLR:
    """Linear warmup over ``warmup_epochs`` (from 1/(warmup+1) of the base rate), then cosine
    decay to ``min_lr_ratio`` x the base rate at ``max_epochs``; stepped once per epoch."""

    def factor(epoch: int) -> float:
        if epoch < warmup_epochs:
            return (epoch + 1) / (warmup_epochs + 1)
        span = max(1, max_epochs - warmup_epochs)
        progress = min(1.0, (epoch - warmup_epochs) / span)
        return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return LambdaLR(optimizer, factor)
