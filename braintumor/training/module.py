"""``MRIClassifier``: the LightningModule that binds a network, the loss, the optimizer and
the metrics. Everything it needs to rebuild itself travels in its hyperparameters, so
``MRIClassifier.from_checkpoint(path)`` alone is enough to evaluate or predict.

One job, though over 300 lines: Lightning's hooks of one module (steps, epoch ends, the
optimizer and its parameter groups, the checkpoint's own fields) act on shared state and
read best in one class, as in lightning-hydra-template's modules.
"""

from __future__ import annotations

import inspect
import logging
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hydra.utils import instantiate
from lightning.pytorch import LightningModule
from lightning.pytorch.trainer.states import TrainerFn
from torch import nn
from torchmetrics import MaxMetric, MeanMetric, MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassF1Score,
    MulticlassPrecision,
    MulticlassRecall,
)
from torchmetrics.utilities.distributed import gather_all_tensors

from braintumor.constraints import Interval, check
from braintumor.data.preprocessing import Preprocessing
from braintumor.models import build_model
from braintumor.models.factory import without_initial_weights
from braintumor.models.tta import tta_logits
from braintumor.runs.checkpoint_file import CALIBRATION, read_checkpoint
from braintumor.runs.checkpoints import newest_in
from braintumor.softmax import softmax_tensor
from braintumor.training.callbacks.averaging import AveragedWeights
from braintumor.training.callbacks.finetuning import FreezeBackbone
from braintumor.training.mixing import batch_mixing
from braintumor.training.schedulers import planned_length, replan
from braintumor.vocabulary import metric_key

log = logging.getLogger(__name__)


def classification_metrics(num_classes: int) -> MetricCollection:
    """Accuracy (over all images) and macro precision, recall and F1, under their names of
    :data:`~braintumor.vocabulary.METRIC_NAMES`."""
    return MetricCollection(
        {
            "accuracy": MulticlassAccuracy(num_classes, average="micro"),
            "precision_macro": MulticlassPrecision(num_classes, average="macro"),
            "recall_macro": MulticlassRecall(num_classes, average="macro"),
            "f1_macro": MulticlassF1Score(num_classes, average="macro"),
        }
    )


def metric_tag(name: str) -> str:
    """A class name usable in a metric key (TensorBoard tags allow no spaces), one per name.

    Letters and digits of any script are kept (``Глиома``), spaces become ``_``; a name that
    loses other characters (``Glioma (T1)``) ends with a short hash of itself, so two names
    never share a tag.
    """
    import hashlib

    tag = re.sub(r"[^\w.+-]+", "_", name)
    if tag != name.replace(" ", "_"):
        tag += "_" + hashlib.sha1(name.encode()).hexdigest()[:6]
    return tag


class MRIClassifier(LightningModule):
    """Image classifier trained with cross-entropy.

    Parameters
    ----------
    net : config of the network to train (``_target_`` or ``name``, and its arguments), built
        by :func:`~braintumor.models.build_model` for the preprocessing's classes and channels.
    optimizer : Hydra config of a partial optimizer (``_partial_: true``), called with the
        parameters.
    preprocessing : ``class_names``, ``image_size``, ``channels``, ``mean``, ``std`` of the data,
        as ``MRIDataModule.preprocessing.to_dict()`` gives them (kept as ``self.preprocessing``).
    scheduler : optional Hydra config of a partial LR scheduler, called with the optimizer.
    scheduler_monitor : metric a ``ReduceLROnPlateau`` scheduler watches.
    label_smoothing : cross-entropy label smoothing.
    class_weights : optional per-class loss weights (e.g. inverse training frequencies).
    ece_bins : bins of the expected calibration error of the reports.
    channels_last : keep activations in NHWC memory order (faster convolutions on CPU and GPU).
    freeze_backbone_epochs : train only the head (``net.head``) for this many epochs, with the
        backbone's weights and BatchNorm statistics frozen; then train everything.
    backbone_lr_factor : the backbone's learning rate is the optimizer's ``lr`` times this.
    compile : run the network through ``torch.compile`` (the weights stay in ``net``, so
        checkpoints are unchanged).
    gradcam_layer : dotted path (negative indices allowed) of the layer Grad-CAM explains,
        e.g. ``net.features.-1.-2``; ``None``: the network's own choice (its ``gradcam_layer``,
        e.g. a backbone's last feature stage), else its last ``Conv2d``.
    divergence_factor : a training loss above this many times chance level (ln of the number
        of classes) stops the run as diverged, like a NaN loss; ``None``: never.
    mixup_alpha, cutmix_alpha, mix_prob : MixUp / CutMix of whole training batches, soft
        targets in the loss (:mod:`braintumor.training.mixing`); 0, 0: none.
    layer_decay : layer-wise learning-rate decay of a pretrained backbone: its stages, from the
        output down, learn at ``lr x backbone_lr_factor x layer_decay ** k`` for the ``k``-th
        stage below the head (the network's ``layer_groups()``); ``None``: one backbone rate.
    ema_decay : an exponential moving average of the weights with this decay per step
        (Lightning's ``EMAWeightAveraging``, BatchNorm statistics recomputed, see
        ``ema_bn_batches``): the averaged weights are the
        ones validated, checkpointed (the training weights ride along for resuming), and so
        calibrated, reported, exported and served; ``None``: none.
    ema_bn_batches : the averaged network's BatchNorm statistics are recomputed from the
        epoch's last this many training batches before each validation
        (:class:`~braintumor.training.callbacks.averaging.AveragedWeights`); 0: averaged like
        the weights.
    """

    def __init__(
        self,
        net: Mapping[str, Any],
        optimizer: Mapping[str, Any],
        preprocessing: Mapping[str, Any],
        scheduler: Mapping[str, Any] | None = None,
        scheduler_monitor: str = "val/loss",
        label_smoothing: float = 0.0,
        class_weights: Sequence[float] | None = None,
        ece_bins: int = 15,
        channels_last: bool = True,
        freeze_backbone_epochs: int = 0,
        backbone_lr_factor: float = 1.0,
        gradcam_layer: str | None = None,
        compile: bool = False,
        divergence_factor: float | None = 100.0,
        mixup_alpha: float = 0.0,
        cutmix_alpha: float = 0.0,
        mix_prob: float = 1.0,
        ema_decay: float | None = None,
        ema_bn_batches: int = 16,
        layer_decay: float | None = None,
    ) -> None:
        super().__init__()
        # in checkpoints; the loggers get the run's own hparams (training.hparams)
        self.save_hyperparameters(logger=False)
        self.preprocessing = Preprocessing.from_dict(preprocessing)  # travels in the checkpoint
        self.class_names: list[str] = list(self.preprocessing.class_names)
        num_classes = len(self.class_names)
        self.net: nn.Module = build_model(net, num_classes, self.preprocessing.channels)
        if gradcam_layer is None and getattr(self.net, "gradcam_layer", None):
            self.hparams["gradcam_layer"] = f"net.{self.net.gradcam_layer}"  # in checkpoints too
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.net.to(memory_format=self.memory_format)
        if class_weights is not None and len(class_weights) != num_classes:
            raise ValueError(
                f"class_weights has {len(class_weights)} values for {num_classes} classes."
            )
        weight = torch.tensor(class_weights, dtype=torch.float32) if class_weights else None
        self.criterion = nn.CrossEntropyLoss(weight=weight, label_smoothing=label_smoothing)
        self.mixing = batch_mixing(num_classes, mixup_alpha, cutmix_alpha, mix_prob)
        if ema_decay is not None:
            check("model", {"ema_decay": ema_decay}, {"ema_decay": Interval(0, 1, closed="left")})
            check("model", {"ema_bn_batches": ema_bn_batches},
                  {"ema_bn_batches": Interval(0, None, whole=True)})  # fmt: skip
        if layer_decay is not None:
            check("model", {"layer_decay": layer_decay},
                  {"layer_decay": Interval(0, 1, closed="right")})  # fmt: skip
        metrics = classification_metrics(num_classes)
        self.train_metrics = metrics.clone(prefix="train/")
        self.train_loss = MeanMetric()
        self.val_metrics = metrics.clone(prefix="val/")
        # val/f1_macro_best (the attribute keeps its name: checkpoints store its state)
        self.val_f1_best = MaxMetric()
        self.val_f1_best.persistent(True)  # a resumed run remembers its best epoch
        # evaluation (trainer.validate / trainer.test) only collects the predictions: the
        # reports compute the val/test metrics once from them (braintumor.evaluation)
        self._targets: list[torch.Tensor] = []
        self._probs: list[torch.Tensor] = []
        self.tta = "none"  # evaluation only: test-time augmentation (braintumor.inference.tta)
        # temperature, abstention threshold, ...: fitted after training, kept in the checkpoint
        self.calibration: dict[str, Any] = {}

    # --------------------------------------------------------------------------- forward
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4:
            x = x.contiguous(memory_format=self.memory_format)
        return self._runner()(x)

    def _runner(self) -> nn.Module:
        """``net``, or its compiled version (kept out of the state dict) with ``compile``."""
        if not self.hparams.get("compile", False):
            return self.net
        compiled = self.__dict__.get("_compiled_net")
        if compiled is None:
            compiled = torch.compile(self.net)
            self.__dict__["_compiled_net"] = compiled
        return compiled

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor]):
        x, y = batch
        logits = self(x)
        return self.criterion(logits, y), logits, y

    def _evaluation_step(self, batch: tuple[torch.Tensor, torch.Tensor]):
        """``_step``, with the views of test-time augmentation outside of training."""
        if self.tta == "none" or (self._trainer is not None and self.trainer.training):
            return self._step(batch)
        x, y = batch
        logits = tta_logits(self, x, self.tta)
        return self.criterion(logits, y), logits, y

    def _collect(self, logits: torch.Tensor, y: torch.Tensor) -> None:
        self._probs.append(logits.detach().float().softmax(dim=1).cpu())
        self._targets.append(y.detach().cpu())

    def _gather_collected(self) -> None:
        """With several processes, every process gets all of the epoch's predictions (each
        image once: the datamodule shards evaluation sets without padding)."""
        if self._trainer is None or self.trainer.world_size == 1:
            return
        k = len(self.class_names)
        targets = torch.cat(self._targets) if self._targets else torch.zeros(0, dtype=torch.long)
        probs = torch.cat(self._probs) if self._probs else torch.zeros(0, k)
        device = self.device
        world = self.trainer.world_size
        shards = [t.cpu() for t in gather_all_tensors(targets.to(device))]
        prob_shards = [p.cpu() for p in gather_all_tensors(probs.to(device))]
        # process r scored images r, r + world, ... (ShardSampler): back into dataset order, so
        # that the i-th prediction is the i-th image (cases and subgroups rely on it)
        n = sum(len(t) for t in shards)
        ordered, ordered_probs = torch.zeros(n, dtype=targets.dtype), torch.zeros(n, k)
        for rank, (t, p) in enumerate(zip(shards, prob_shards, strict=True)):
            ordered[rank::world], ordered_probs[rank::world] = t, p
        self._targets, self._probs = [ordered], [ordered_probs]

    def collected_predictions(self) -> tuple[np.ndarray, np.ndarray]:
        """``(y_true, y_prob)`` of the last validation or test epoch."""
        if not self._targets:
            return np.zeros(0, dtype=np.int64), np.zeros((0, len(self.class_names)))
        return torch.cat(self._targets).numpy(), torch.cat(self._probs).numpy()

    # ------------------------------------------------------------------------ checkpoints
    @classmethod
    def from_checkpoint(cls, path: str | Path) -> MRIClassifier:
        """The module saved in ``path`` (on the CPU), its weights verified against the
        checkpoint's checksum (:func:`~braintumor.runs.checkpoint_file.read_checkpoint`)."""
        found = read_checkpoint(path)
        accepted = inspect.signature(cls.__init__).parameters
        hparams = {k: v for k, v in found.hyper_parameters.items() if k in accepted}
        if isinstance(hparams.get("net"), Mapping):  # the checkpoint's weights replace them
            hparams["net"] = without_initial_weights(hparams["net"])
        module = cls(**hparams)
        module.on_load_checkpoint({CALIBRATION: dict(found.calibration)})
        module.load_state_dict(found.state_dict)
        return module

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.calibration = dict(checkpoint.get(CALIBRATION) or {})

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.calibration:
            checkpoint[CALIBRATION] = dict(self.calibration)

    # -------------------------------------------------------------------------- training
    def on_train_start(self) -> None:
        self.val_metrics.reset()  # the sanity check's batches
        if self.trainer.ckpt_path is None:
            return
        planned = self.__dict__.get("_planned_lengths", [])
        for config, length in zip(self.trainer.lr_scheduler_configs, planned, strict=False):
            change = replan(config.scheduler, length)
            if change:
                log.info(f"resumed for trainer.max_epochs={self.trainer.max_epochs}: {change}")

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        if self.mixing is None:
            loss, logits, y = self._step(batch)
        else:  # soft targets in the loss; the metrics below on the hard labels
            x, y = batch
            mixed, targets = self.mixing(x, y)
            logits = self(mixed)
            loss = self.criterion(logits, targets)
        value = float(loss.detach())  # one device sync per step, as before
        where = f"at epoch {self.current_epoch}, step {self.global_step} (batch {batch_idx})"
        advice = (
            "Lower model.optimizer.lr (or set trainer.gradient_clip_val) or check the input data."
        )
        if not math.isfinite(value):
            raise FloatingPointError(
                f"training loss is {value} {where}; {self._last_good_checkpoint()}. {advice}"
            )
        factor = self.hparams.get("divergence_factor")
        chance = math.log(max(2, len(self.class_names)))
        if factor is not None and value > factor * chance:
            raise FloatingPointError(
                f"training diverged: the loss is {value:.3g} {where}, over {factor:g} x "
                f"ln({len(self.class_names)}) = {factor * chance:.3g} (guessing scores "
                f"{chance:.3g}); {self._last_good_checkpoint()}. {advice} "
                "(model.divergence_factor=null turns this check off.)"
            )
        # accumulated here and logged once per epoch: a `self.log` call costs ~2 ms of
        # Lightning bookkeeping, 6% of a 96 px CPU step when made five times per step
        self.train_metrics.update(logits, y)
        self.train_loss.update(loss.detach())
        return loss

    def on_train_epoch_end(self) -> None:
        if self.train_loss.update_count == 0:
            return
        self.log("train/loss", self.train_loss.compute(), prog_bar=True)
        self.log_dict(self.train_metrics.compute())
        self.train_loss.reset()
        self.train_metrics.reset()

    def _last_good_checkpoint(self) -> str:
        trainer = self._trainer
        checkpointer = trainer.checkpoint_callback if trainer is not None else None
        folder = getattr(checkpointer, "dirpath", None)
        path = newest_in(Path(folder)) if folder else None
        if path is None:
            return "no checkpoint was saved before it"
        return f"the last good checkpoint is {path} (resume: ckpt_path={path})"

    # ------------------------------------------------------------------------ validation
    def on_validation_epoch_start(self) -> None:
        self._targets, self._probs = [], []

    def validation_step(self, batch, batch_idx: int) -> None:
        loss, logits, y = self._evaluation_step(batch)
        self.val_metrics.update(logits, y)
        self._collect(logits, y)
        self.log("val/loss", loss, on_step=False, on_epoch=True, prog_bar=True, sync_dist=True)

    def on_validation_epoch_end(self) -> None:
        self._gather_collected()
        if self._trainer is not None and self._trainer.state.fn != TrainerFn.FITTING:
            self.val_metrics.reset()  # an evaluation: the report scores what was collected
            return
        values = self.val_metrics.compute()
        self.val_metrics.reset()
        f1 = metric_key("val", "f1_macro")
        self.log_dict({k: v for k, v in values.items() if k != f1})
        self.log(f1, values[f1], prog_bar=True)
        if self._trainer is not None and self._trainer.sanity_checking:
            return  # not an epoch: the best F1 (restored on resume) must not see it
        self.val_f1_best.update(values[f1])
        self.log(metric_key("val", "f1_macro_best"), self.val_f1_best.compute(), prog_bar=True)

    # ------------------------------------------------------------------------------ test
    def on_test_epoch_start(self) -> None:
        self._targets, self._probs = [], []

    def test_step(self, batch, batch_idx: int) -> None:
        loss, logits, y = self._evaluation_step(batch)
        self._collect(logits, y)
        self.log("test/loss", loss, on_step=False, on_epoch=True, sync_dist=True)

    def on_test_epoch_end(self) -> None:
        self._gather_collected()  # the reports score them (training.reporting)

    def predict_step(self, batch, batch_idx: int) -> torch.Tensor:
        x = batch[0] if isinstance(batch, (list, tuple)) else batch
        temperature = float(self.calibration.get("temperature", 1.0))
        return softmax_tensor(self(x).float(), temperature)

    # ----------------------------------------------------------------------- fine-tuning
    def layer_wise_groups(
        self, backbone: list[nn.Parameter], lr: float, decay: float
    ) -> list[dict[str, Any]]:
        """One parameter group per backbone stage (``net.layer_groups()``, input first), the
        ``k``-th below the head at ``lr x decay ** k``; parameters of no stage go with the
        lowest one."""
        stages = getattr(self.net, "layer_groups", None)
        layers = [list(p) for p in stages()] if stages else [backbone]
        ids = {id(p) for p in backbone}
        layers = [[p for p in layer if id(p) in ids] for layer in layers]
        layers = [layer for layer in layers if layer]
        placed = {id(p) for layer in layers for p in layer}
        rest = [p for p in backbone if id(p) not in placed]
        if rest:
            layers = [[*rest, *(layers[0] if layers else [])], *layers[1:]]
        n = len(layers)
        return [{"params": layer, "lr": lr * decay ** (n - i), "name": f"backbone.{i}"}
                for i, layer in enumerate(layers)]  # fmt: skip

    def head_and_backbone(self) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        """Parameters of ``net.head`` and of everything else (all head if there is none)."""
        head = getattr(self.net, "head", None)
        if head is None:
            return list(self.net.parameters()), []
        head_ids = {id(p) for p in head.parameters()}
        backbone = [p for p in self.net.parameters() if id(p) not in head_ids]
        return list(head.parameters()), backbone

    def configure_callbacks(self) -> list:
        """The backbone frozen for ``freeze_backbone_epochs`` epochs (Lightning's
        ``BaseFinetuning``) and the weights' moving average (``ema_decay``), whichever Trainer
        fits this module."""
        callbacks: list = [FreezeBackbone(self.hparams.get("freeze_backbone_epochs", 0))]
        decay = self.hparams.get("ema_decay")
        if decay is not None:
            batches = self.hparams.get("ema_bn_batches", 0)  # checkpoints from before: none
            callbacks.append(AveragedWeights(decay=float(decay), bn_batches=batches))
        return callbacks

    # ------------------------------------------------------------------------- optimizer
    def configure_optimizers(self) -> Any:
        head, backbone = self.head_and_backbone()
        lr = self.hparams.optimizer.get("lr", 1e-3)
        groups: Any = [{"params": head, "name": "head"}]
        decay = self.hparams.get("layer_decay")
        if backbone and decay is not None:
            groups += self.layer_wise_groups(backbone, lr * self.hparams.backbone_lr_factor, decay)
        elif backbone and self.hparams.backbone_lr_factor == 1.0:
            groups = self.parameters()  # one group: curves are logged as lr-<Optimizer>
        elif backbone:
            groups.append(
                {"params": backbone, "lr": lr * self.hparams.backbone_lr_factor, "name": "backbone"}
            )
        optimizer = instantiate(self.hparams.optimizer)(params=groups)
        if not self.hparams.scheduler:
            return optimizer
        scheduler = instantiate(self.hparams.scheduler)(optimizer=optimizer)
        # this run's plan (e.g. T_max=max_epochs): a resumed run's restored state replaces it
        self.__dict__["_planned_lengths"] = [planned_length(scheduler)]
        return {
            "optimizer": optimizer,
            "lr_scheduler": {
                "scheduler": scheduler,
                "monitor": self.hparams.scheduler_monitor,
                "interval": "epoch",
            },
        }
