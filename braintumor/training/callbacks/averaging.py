"""``AveragedWeights``: the weights' moving average, with BatchNorm statistics of its own.

Lightning's ``EMAWeightAveraging`` averages the BatchNorm running statistics like the weights.
The statistics of the averaged network are not the average of the statistics along the way:
when the training weights turn fast (AdamW with weight decay turns the scale-free conv filters
in front of a BatchNorm), the averaged filters produce smaller activations than the averaged
statistics expect, and the averaged network can collapse to one class while the training one
learns (measured on the hard benchmark, experiment=from_scratch at seed 44, fp32: validation
accuracy 0.026 against 0.41 at epoch 17). As ``torch.optim.swa_utils.update_bn`` does for
SWA, the statistics are recomputed here by running the epoch's last training batches (kept
as the training step saw them, so in every loader mode and without drawing from the loader
again) through the averaged weights, before every validation and at the end of training:
whatever is validated, checkpointed and served is consistent. A checkpoint saved mid-epoch
keeps those batches, so a resumed run recomputes the same statistics.
"""

from __future__ import annotations

from collections import deque
from contextlib import nullcontext
from typing import Any

import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import EMAWeightAveraging
from torch.nn.modules.batchnorm import _BatchNorm


def refresh_batch_norm(module: torch.nn.Module, layers: list[_BatchNorm],
                       inputs: list[torch.Tensor], context: Any = None) -> None:  # fmt: skip
    """Recompute the running statistics of ``layers`` as the plain average over the batches
    ``inputs`` run through ``module`` (every other layer in eval mode, no gradients);
    ``context``: the forward context (the trainer's precision), or none."""
    modes = {m: m.training for m in module.modules()}
    momenta = {m: m.momentum for m in layers}
    for m in layers:
        m.reset_running_stats()
        m.momentum = None  # cumulative: every batch counts the same
    module.eval()
    for m in layers:
        m.train()
    try:
        with torch.no_grad(), context() if context is not None else nullcontext():
            device = next(module.parameters()).device
            for x in inputs:
                module(x.to(device))
    finally:
        for m, momentum in momenta.items():
            m.momentum = momentum
        for m, mode in modes.items():
            m.training = mode


class AveragedWeights(EMAWeightAveraging):
    """``EMAWeightAveraging`` whose averaged network gets its BatchNorm statistics recomputed
    from the epoch's last ``bn_batches`` training batches before each validation and at the
    end of training (``bn_batches=0``: averaged like the weights, as Lightning does). BatchNorm
    layers in eval mode during training (a frozen backbone's) keep their statistics; with
    several processes the statistics are averaged over them."""

    def __init__(self, decay: float, bn_batches: int = 16) -> None:
        super().__init__(decay=decay)  # bn_batches >= 0: checked by MRIClassifier
        self.bn_batches = int(bn_batches)
        self._inputs: deque[torch.Tensor] = deque(maxlen=max(self.bn_batches, 1))
        self._training_bn: list[_BatchNorm] | None = None  # None: not yet seen this epoch

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:  # fmt: skip
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        if self.bn_batches == 0:
            return
        if batch_idx == 0 or self._training_bn is None:  # after the epoch-start hooks
            self._training_bn = [
                m for m in pl_module.modules() if isinstance(m, _BatchNorm) and m.training
            ]
        if self._training_bn:
            x = batch[0] if isinstance(batch, (list, tuple)) else batch
            self._inputs.append(x.detach())

    def on_validation_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        super().on_validation_epoch_start(trainer, pl_module)  # the average is in pl_module now
        if self._average_model is not None and not trainer.sanity_checking:
            self._refresh(trainer, pl_module)

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._average_model is not None and self._inputs:  # trained since the last refresh
            self._swap_models(pl_module)
            self._refresh(trainer, pl_module)
            self._swap_models(pl_module)
        super().on_train_end(trainer, pl_module)

    def _refresh(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not self._inputs or not self._training_bn:
            return
        precision = trainer.strategy.precision_plugin
        refresh_batch_norm(pl_module, self._training_bn, list(self._inputs),
                           precision.forward_context)  # fmt: skip
        if trainer.world_size > 1:
            for m in self._training_bn:
                m.running_mean.copy_(trainer.strategy.reduce(m.running_mean, reduce_op="mean"))
                m.running_var.copy_(trainer.strategy.reduce(m.running_var, reduce_op="mean"))
        self._inputs.clear()  # the next epoch's batches for the next refresh

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["bn_inputs"] = [x.cpu() for x in self._inputs]  # empty after a validation
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state = dict(state_dict)
        inputs = state.pop("bn_inputs", [])
        super().load_state_dict(state)
        self._inputs.clear()
        self._inputs.extend(inputs)
