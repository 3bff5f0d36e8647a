"""``FreezeBackbone``: a pretrained backbone frozen for the first epochs, then trained.

The module adds it itself (``MRIClassifier.configure_callbacks``) from its
``freeze_backbone_epochs``, so a plain ``Trainer`` fine-tunes the same way ``train.py`` does.
"""

from __future__ import annotations

from typing import Any

from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import BaseFinetuning
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.optim import Optimizer


def backbone_modules(net: nn.Module) -> list[nn.Module]:
    """The modules of ``net`` outside ``net.head`` that hold parameters of their own, and its
    BatchNorm layers (none when the network has no ``head``: all of it is then the head)."""
    head = getattr(net, "head", None)
    if head is None:
        return []
    in_head = {id(m) for m in head.modules()}
    return [
        m
        for m in net.modules()
        if id(m) not in in_head
        and (isinstance(m, _BatchNorm) or next(m.parameters(recurse=False), None) is not None)
    ]


class FreezeBackbone(BaseFinetuning):
    """The backbone (``net`` outside ``net.head``) frozen, its weights and its BatchNorm
    statistics, for the first ``epochs`` epochs; then trained.

    Lightning's ``BaseFinetuning`` (its ``freeze`` and ``make_trainable``), used so that runs
    and resumed runs stay what they were with the hand-written version:

    - no parameter group is added when the backbone thaws: the module's optimizer holds the
      backbone from the start, in its own group at ``lr x backbone_lr_factor`` (named
      ``backbone``, so the learning-rate curves keep their names); frozen parameters get no
      gradient, so the optimizer leaves them alone. Without added groups there is nothing for
      ``BaseFinetuning`` to record and restore on resume (it would restore the groups as they
      were at the first epoch, learning rates included).
    - the state of each epoch is set at its start (frozen or not), not once before training:
      a resumed run needs it at whatever epoch it starts, and DDP registers the parameters
      that need gradients when it wraps the model, so parameters frozen before then would
      never have their gradients averaged once thawed.
    - frozen BatchNorm layers run in eval mode: they normalize with their pretrained
      statistics (``freeze(train_bn=False)`` alone would normalize with batch statistics).
    """

    def __init__(self, epochs: int = 0) -> None:
        super().__init__()
        self.epochs = int(epochs)

    def frozen(self, epoch: int) -> bool:
        return epoch < self.epochs

    def freeze_before_training(self, pl_module: LightningModule) -> None:
        """Nothing: each epoch sets its own state (see the class docstring)."""

    def finetune_function(self, pl_module: LightningModule, epoch: int, optimizer: Any) -> None:
        modules = backbone_modules(pl_module.net)
        if self.frozen(epoch):
            self.freeze(modules, train_bn=False)
        else:
            self.make_trainable(modules)
            pl_module.net.train()  # BatchNorm layers kept in eval mode learn statistics again

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        optimizer: Optimizer | None = trainer.optimizers[0] if trainer.optimizers else None
        self.finetune_function(pl_module, trainer.current_epoch, optimizer)

    def on_train_batch_start(
        self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self.frozen(trainer.current_epoch):  # Lightning puts the model in train mode
            for module in backbone_modules(pl_module.net):
                if isinstance(module, _BatchNorm):
                    module.eval()
