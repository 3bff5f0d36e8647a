"""The pieces of a run, built from the composed config: the datamodule, the LightningModule and
the Trainer (with its callbacks, loggers and checkpoint I/O)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from hydra.utils import get_class, instantiate
from lightning.pytorch import Callback, Trainer
from lightning.pytorch.callbacks import LearningRateMonitor, ProgressBar
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig, OmegaConf

from braintumor.constraints import Options, check
from braintumor.data.augmentation import AugmentSpec
from braintumor.data.datamodule import MRIDataModule
from braintumor.data.preprocessing import Preprocessing
from braintumor.errors import UsageError
from braintumor.models import imagenet_normalization, model_data_config
from braintumor.runs.checkpoints import SafeCheckpointIO
from braintumor.training.module import MRIClassifier

log = logging.getLogger(__name__)

NORMALIZATIONS = ("data", "auto", "imagenet")


def model_normalization(cfg: DictConfig) -> dict[str, list[float]]:
    """Mean/std the model asks for (``model.normalization``), or ``{}`` for the data's own.

    ``data``: the data config's mean/std; ``imagenet``: ImageNet's; ``auto``: the network's
    own (its data config, :func:`~braintumor.models.model_data_config`: ImageNet's when it
    starts from pretrained weights), else the data's. One-channel input gets the mean of
    ImageNet's three values, matching the first conv folded to one channel.
    """
    mode = cfg.model.get("normalization", "data")
    check("model", {"normalization": mode}, {"normalization": Options(NORMALIZATIONS)})
    channels = cfg.data.get("channels", 1)
    if mode == "data":
        return {}
    if mode == "imagenet":
        mean, std = imagenet_normalization(channels)
    else:
        net = OmegaConf.to_container(cfg.model.net, resolve=True)
        wanted = model_data_config(net, in_channels=channels)
        mean, std = wanted["mean"], wanted["std"]
        if mean is None:
            return {}
    return {"mean": list(mean), "std": list(std)}


def build_datamodule(cfg: DictConfig, preprocessing: Preprocessing | None = None) -> MRIDataModule:
    """The datamodule of ``cfg.data`` with ``cfg.augment``; ``preprocessing`` (from a
    checkpoint) overrides image size, channels and normalization, else the model config
    may choose the normalization (:func:`model_normalization`)."""
    if preprocessing is not None:
        prep = preprocessing
        overrides = {"image_size": prep.image_size, "channels": prep.channels,
                     "mean": list(prep.mean), "std": list(prep.std)}  # fmt: skip
    else:
        overrides = model_normalization(cfg) if cfg.get("model") else {}
    size = overrides.get("image_size", cfg.data.image_size)
    spec: AugmentSpec = (
        instantiate(cfg.augment, _convert_="all") if cfg.get("augment") else AugmentSpec()
    )
    augment = spec.transforms(size)  # image by image (data.augment_on=loader)
    overrides["batch_augment"] = spec.batch_augment(size)  # whole batches (batch, device)
    dm = instantiate(cfg.data, augment=augment, **overrides, _convert_="all")
    dm.prepare_data()
    dm.setup("fit")
    return dm


def build_module(cfg: DictConfig, dm: MRIDataModule) -> MRIClassifier:
    """The LightningModule of ``cfg.model``, its head sized to the datamodule's classes; its
    validation ECE uses ``eval.ece_bins`` bins, as the reports do."""
    kwargs: dict[str, Any] = OmegaConf.to_container(cfg.model, resolve=True)
    kwargs["ece_bins"] = int(cfg.eval.ece_bins)
    module_class = get_class(kwargs.pop("_target_", "braintumor.training.module.MRIClassifier"))
    kwargs.pop("normalization", None)  # used by build_datamodule
    net = kwargs["net"]  # built by the module for the datamodule's classes and channels
    random_backbone = not (net.get("pretrained") or net.get("weights_path"))
    if random_backbone and (
        kwargs.get("freeze_backbone_epochs")
        or kwargs.get("backbone_lr_factor", 1.0) != 1.0
        or kwargs.get("layer_decay") is not None
    ):
        log.info(
            "the backbone starts from random weights: not frozen, and trained at the head's "
            "learning rate, without layer-wise decay (nothing pretrained to preserve)"
        )
        kwargs["freeze_backbone_epochs"] = 0
        kwargs["backbone_lr_factor"] = 1.0
        kwargs["layer_decay"] = None
    if kwargs.get("class_weights") == "balanced":
        counts = torch.tensor(dm.class_counts("train"), dtype=torch.float64).clamp(min=1)
        kwargs["class_weights"] = (counts.sum() / (len(counts) * counts)).tolist()
    module = module_class(preprocessing=dm.preprocessing.to_dict(), **kwargs)
    fixed = getattr(module.net, "fixed_input_size", None)
    if fixed is not None and fixed != dm.image_size:  # else an assertion at the first batch
        raise UsageError(
            f"model.net.name={net.get('name')} takes {fixed} x {fixed} px images only; "
            f"data.image_size is {dm.image_size}. Set data.image_size={fixed}, or choose a "
            "timm name of another input size (e.g. *_384) or a convolutional network."
        )
    return module


def native_cpu_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX): there, bf16 autocast
    roughly halves a convolutional training step; elsewhere it is emulated, and slower."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def trainer_precision(precision: Any, accelerator: Any) -> Any:
    """``trainer.precision``, with ``auto`` resolved: bf16 mixed precision on a CUDA GPU that
    has bf16 (Ampere and later), fp16 mixed on older ones, 32-bit elsewhere (the CPU).
    ``auto-bf16`` is the same on GPUs, and bf16 mixed on a CPU that computes bf16 natively
    (:func:`native_cpu_bf16`)."""
    if precision not in ("auto", "auto-bf16"):
        return precision
    on_gpu = str(accelerator) in ("auto", "gpu", "cuda") and torch.cuda.is_available()
    if not on_gpu:
        return "bf16-mixed" if precision == "auto-bf16" and native_cpu_bf16() else "32-true"
    return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"


def build_trainer(cfg: DictConfig, **kwargs: Any) -> Trainer:
    """The Trainer of ``cfg.trainer`` with the callbacks and loggers of the config; its
    checkpoints are written atomically with a checksum and verified on load
    (:class:`~braintumor.runs.checkpoints.SafeCheckpointIO`)."""
    callbacks: list[Callback] = [
        instantiate(c, _convert_="all")
        for c in (cfg.get("callbacks") or {}).values()
        if c and "_target_" in c
    ]
    if not cfg.trainer.get("enable_progress_bar", True):
        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
    loggers: list[Logger] = [
        instantiate(c, _convert_="all")
        for c in (cfg.get("logger") or {}).values()
        if c and "_target_" in c
    ]
    if not loggers:  # nothing to log learning rates to (logger=none)
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    plugins = [*kwargs.pop("plugins", []), SafeCheckpointIO(cfg.paths.output_dir)]
    asked = cfg.trainer.get("precision")
    kwargs.setdefault("precision", trainer_precision(asked, cfg.trainer.get("accelerator")))
    if asked in ("auto", "auto-bf16"):
        log.info(f"trainer.precision={asked}: {kwargs['precision']} on this machine")
    return instantiate(
        cfg.trainer, callbacks=callbacks, logger=loggers or False, plugins=plugins, **kwargs
    )


@contextmanager
def out_of_memory_advice(dm: MRIDataModule) -> Iterator[None]:
    """Re-raise running out of (GPU or CPU) memory with the batch in use and what to lower."""
    try:
        yield
    except (torch.OutOfMemoryError, RuntimeError) as error:
        text = str(error)
        if not isinstance(error, torch.OutOfMemoryError) and "can't allocate memory" not in text:
            raise
        where = "GPU" if isinstance(error, torch.OutOfMemoryError) else "CPU"
        raise MemoryError(
            f"out of {where} memory with data.batch_size={dm.loading.batch_size} at "
            f"data.image_size={dm.image_size} ({dm.channels} channel(s)). Lower data.batch_size "
            f"(e.g. data.batch_size={max(1, dm.loading.batch_size // 2)}) or data.image_size, use "
            "trainer.precision=bf16-mixed on a GPU, or trainer.accumulate_grad_batches=2 to keep "
            f"the effective batch. The error was: {text.splitlines()[0] if text else error!r}"
        ) from error
