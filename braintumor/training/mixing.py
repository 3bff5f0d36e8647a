"""MixUp and CutMix on whole training batches (``model.mixup_alpha``, ``model.cutmix_alpha``).

torchvision's ``transforms.v2.MixUp`` and ``CutMix`` blend each batch with itself shuffled and
return soft targets (a probability per class), which ``nn.CrossEntropyLoss`` takes as they are:
label smoothing applies on top, and class weights weigh each class's share of a soft target.
With both on, each mixed batch is one or the other, with equal chance; ``mix_prob`` is the share
of batches mixed at all. The training metrics stay on the hard labels of the unmixed images.
The draws come from torch's generator, which the training step seeds from
``(seed, epoch, batch)``, so a resumed run mixes as the uninterrupted one did.
"""

from __future__ import annotations

import torch
from torchvision.transforms import v2

from braintumor.constraints import Interval, check

CONSTRAINTS = {
    "mixup_alpha": Interval(0),
    "cutmix_alpha": Interval(0),
    "mix_prob": Interval(0, 1),
}


class BatchMixing:
    """MixUp and/or CutMix of a batch ``(images, labels)`` into ``(images, soft targets)``."""

    def __init__(
        self, num_classes: int, mixup_alpha: float, cutmix_alpha: float, mix_prob: float
    ) -> None:
        values = {"mixup_alpha": mixup_alpha, "cutmix_alpha": cutmix_alpha, "mix_prob": mix_prob}
        check("model", values, CONSTRAINTS)
        if num_classes < 2:
            raise ValueError(
                f"model.mixup_alpha / model.cutmix_alpha mix classes, but the data has "
                f"{num_classes}: set both to 0."
            )
        mixes = []
        if mixup_alpha > 0:
            mixes.append(v2.MixUp(alpha=float(mixup_alpha), num_classes=num_classes))
        if cutmix_alpha > 0:
            mixes.append(v2.CutMix(alpha=float(cutmix_alpha), num_classes=num_classes))
        self.mix = mixes[0] if len(mixes) == 1 else v2.RandomChoice(mixes)
        self.mix_prob = float(mix_prob)
        self.num_classes = num_classes

    def __call__(
        self, images: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.mix_prob < 1 and float(torch.rand(())) >= self.mix_prob:
            return images, labels
        return self.mix(images, labels)


def batch_mixing(
    num_classes: int, mixup_alpha: float = 0.0, cutmix_alpha: float = 0.0, mix_prob: float = 1.0
) -> BatchMixing | None:
    """The mixing of a run, ``None`` when both alphas are 0 (no mixing, no random draw)."""
    if not mixup_alpha and not cutmix_alpha:
        check("model", {"mix_prob": mix_prob}, CONSTRAINTS)
        return None
    return BatchMixing(num_classes, mixup_alpha, cutmix_alpha, mix_prob)
