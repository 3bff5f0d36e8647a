"""Train and evaluate as functions of a composed Hydra config.

``train(cfg)``: seed -> datamodule, module, callbacks, loggers, trainer -> fit -> evaluate the
best checkpoint on val and test -> reports in the run directory -> metrics.
``evaluate(cfg)``: the same reports for an existing checkpoint (``train=false ckpt_path=...``).
"""

from __future__ import annotations

import logging
import signal
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from hydra.utils import get_class, instantiate
from lightning.pytorch import Callback, Trainer, seed_everything
from lightning.pytorch.callbacks import LearningRateMonitor, ProgressBar
from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities import rank_zero_only
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf

from braintumor.data.augment_spec import AugmentSpec
from braintumor.data.datamodule import MRIDataModule
from braintumor.data.preprocessing import Preprocessing, class_difference
from braintumor.data.skipped import write_skipped
from braintumor.errors import DataError
from braintumor.evaluation.summary import format_metrics_table
from braintumor.models import imagenet_normalization, model_data_config
from braintumor.runs.checkpoints import (
    SafeCheckpointIO,
    check_compatible,
    checkpoint_preprocessing,
    resolve_checkpoint,
    store_calibration,
)
from braintumor.runs.environment import write_environment
from braintumor.runs.layout import RunDir
from braintumor.training.external_sets import is_external, leave_source_out
from braintumor.training.external_validation import external_settings, score_external
from braintumor.training.hparams import log_final, log_start, run_hparams
from braintumor.training.module import MRIClassifier
from braintumor.training.reporting import (
    evidence_settings,
    report_checkpoint,
    write_run_model_card,
)

log = logging.getLogger(__name__)

# Lightning attaches its own console handler to the "lightning" logger; under Hydra's logging
# setup every message would print twice, so its records go through the root handlers only.
if logging.getLogger().handlers:
    logging.getLogger("lightning").handlers.clear()
# Lightning 2.6 on torch >= 2.10 warns about its own use of a deprecated pytree API.
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
# torchmetrics' calibration error on a transposed view: a copy, not a problem (a quiet terminal).
warnings.filterwarnings("ignore", message=r"torch\.searchsorted\(\): input value tensor is non-")

NORMALIZATIONS = ("data", "auto", "imagenet")


def model_normalization(cfg: DictConfig) -> dict[str, list[float]]:
    """Mean/std the model asks for (``model.normalization``), or ``{}`` for the data's own.

    ``data``: the data config's mean/std; ``imagenet``: ImageNet's; ``auto``: the network's
    own (its data config, :func:`~braintumor.models.model_data_config`: ImageNet's when it
    starts from pretrained weights), else the data's. One-channel input gets the mean of
    ImageNet's three values, matching the first conv folded to one channel.
    """
    mode = cfg.model.get("normalization", "data")
    if mode not in NORMALIZATIONS:
        raise ValueError(f"model.normalization must be one of {NORMALIZATIONS}, got '{mode}'.")
    channels = cfg.data.get("channels", 1)
    if mode == "data":
        return {}
    if mode == "imagenet":
        mean, std = imagenet_normalization(channels)
    else:
        wanted = model_data_config(cfg.model, in_channels=channels)
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
    spec: AugmentSpec = instantiate(cfg.augment) if cfg.get("augment") else AugmentSpec()
    augment = spec.transforms(size)  # image by image (data.augment_on=loader)
    overrides["batch_augment"] = spec.batch_augment(size)  # whole batches (batch, device)
    dm = instantiate(cfg.data, augment=augment, **overrides, _convert_="all")
    dm.prepare_data()
    dm.setup("fit")
    return dm


def build_module(cfg: DictConfig, dm: MRIDataModule) -> MRIClassifier:
    """The LightningModule of ``cfg.model``, its head sized to the datamodule's classes."""
    kwargs: dict[str, Any] = OmegaConf.to_container(cfg.model, resolve=True)
    module_class = get_class(kwargs.pop("_target_", "braintumor.training.module.MRIClassifier"))
    kwargs.pop("normalization", None)  # used by build_datamodule
    net = kwargs["net"]  # built by the module for the datamodule's classes and channels
    random_backbone = not (net.get("pretrained") or net.get("weights_path"))
    if random_backbone and (
        kwargs.get("freeze_backbone_epochs") or kwargs.get("backbone_lr_factor", 1.0) != 1.0
    ):
        log.info(
            "the backbone starts from random weights: not frozen, and trained at the head's "
            "learning rate (nothing pretrained to preserve)"
        )
        kwargs["freeze_backbone_epochs"] = 0
        kwargs["backbone_lr_factor"] = 1.0
    if kwargs.get("class_weights") == "balanced":
        counts = torch.tensor(dm.class_counts("train"), dtype=torch.float64).clamp(min=1)
        kwargs["class_weights"] = (counts.sum() / (len(counts) * counts)).tolist()
    return module_class(preprocessing=dm.preprocessing.to_dict(), **kwargs)


def build_trainer(cfg: DictConfig, **kwargs: Any) -> Trainer:
    """The Trainer of ``cfg.trainer`` with the callbacks and loggers of the config; its
    checkpoints are written atomically with a checksum and verified on load
    (:class:`~braintumor.runs.checkpoints.SafeCheckpointIO`)."""
    callbacks: list[Callback] = [
        instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c and "_target_" in c
    ]
    if not cfg.trainer.get("enable_progress_bar", True):
        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
    loggers: list[Logger] = [
        instantiate(c) for c in (cfg.get("logger") or {}).values() if c and "_target_" in c
    ]
    if not loggers:  # nothing to log learning rates to (logger=none)
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    plugins = [*kwargs.pop("plugins", []), SafeCheckpointIO(cfg.paths.output_dir)]
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


def _summarize(run_dir: Path, ckpt: str | None, results: dict[str, dict]) -> None:
    lines = ["", f"Run directory: {run_dir}", f"Checkpoint:    {ckpt or 'in-memory weights'}"]
    if results:
        lines += ["", format_metrics_table(results), "", f"Reports:       {run_dir / 'reports'}"]
    lines.append("Curves:        make tensorboard  (or: tensorboard --logdir outputs)")
    log.info("\n".join(lines))


def train(cfg: DictConfig) -> dict[str, float]:
    """Fit ``cfg.model`` on ``cfg.data``, then evaluate the best checkpoint; return metrics."""
    cfg = leave_source_out(cfg)  # eval.held_out: train without a source, then score it
    if cfg.get("seed") is not None:
        seed_everything(cfg.seed, workers=True)
    run_dir = Path(cfg.paths.output_dir)
    main_process = rank_zero_only.rank == 0  # the others of a multi-process run write nothing
    dm = build_datamodule(cfg)
    if main_process:
        dm.save_split(RunDir(run_dir).split_csv)
    skipped_log = RunDir(run_dir).skipped_images
    if dm.catalog.skipped and main_process:
        write_skipped(skipped_log, [(s.path, reason) for s, reason in dm.catalog.skipped])
    for dataset in dm.datasets.values():  # images that fail later are appended there
        dataset.skipped_log = skipped_log
    module = build_module(cfg, dm)
    trainer = build_trainer(cfg)
    if main_process:
        write_environment(run_dir, cfg)
    params = run_hparams(cfg)
    log_start(trainer, params)
    n_params = sum(p.numel() for p in module.parameters())
    log.info(
        f"Training {type(module.net).__name__} ({n_params / 1e3:.0f}k parameters) on "
        f"{dm.num_classes} classes from {dm.root} "
        f"({len(dm.datasets['train'])} train / {len(dm.datasets['val'])} val / "
        f"{len(dm.datasets['test'])} test images, seed {cfg.get('seed')}) -> {run_dir}"
    )
    metrics: dict[str, float] = {}
    if cfg.get("train", True):
        resume = resolve_checkpoint(cfg.get("ckpt_path"), run_dir)
        if resume is not None:
            check_compatible(resume, checkpoint_preprocessing(resume), dm.preprocessing)
            log.info(f"resuming from {resume}")
        with out_of_memory_advice(dm):
            try:
                trainer.fit(module, datamodule=dm, ckpt_path=resume)
            except SIGTERMException:  # checkpoint saved; a scheduler must see the failure
                raise SystemExit(128 + signal.SIGTERM) from None
        metrics.update({k: float(v) for k, v in trainer.callback_metrics.items()})
        metrics["epoch"] = float(trainer.current_epoch)  # epochs completed (resumed ones too)
    ckpt = None
    checkpointer = trainer.checkpoint_callback
    if checkpointer is not None and checkpointer.best_model_path:
        ckpt = checkpointer.best_model_path
    elif cfg.get("train", True):
        warnings.warn("no best checkpoint was saved; evaluating the last weights.", stacklevel=1)
    results: dict[str, dict] = {}
    if cfg.get("test", True):
        settings = evidence_settings(cfg, module)
        results, calibration = report_checkpoint(
            trainer, module, dm, run_dir, ckpt, settings=settings
        )
        if main_process and calibration.get("source") == "fitted on validation":
            module.calibration = {k: v for k, v in calibration.items() if k != "source"}
            if ckpt is not None:  # the temperature and threshold travel with the weights
                store_calibration(ckpt, module.calibration)
        if main_process and results:
            write_run_model_card(cfg, run_dir, dm, module, results)
    for split, values in results.items():
        metrics.update({f"{split}/{k}": v for k, v in values.items() if isinstance(v, float)})
    external = (cfg.get("eval") or {}).get("external_data")
    if external and main_process:  # a set left out of training (leave_one_source_out)
        scorer = MRIClassifier.from_checkpoint(ckpt) if ckpt else module
        found = score_external(external, scorer, ckpt or "in-memory weights", RunDir(run_dir),
                               run_dir, external_settings(cfg))  # fmt: skip
        metrics.update({f"external/{k}": v for k, v in found.items() if isinstance(v, float)})
    log_final(trainer, params, metrics)
    if main_process:
        _summarize(run_dir, ckpt, results)
    return metrics


def _split_file_beside(ckpt: Path) -> Path | None:
    """The ``split.csv`` of the run directory a checkpoint was saved in, if any."""
    run = RunDir.of_checkpoint(ckpt)
    return run.split_csv if run is not None and run.split_csv.is_file() else None


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Write val/test reports for ``cfg.ckpt_path`` on ``cfg.data``; return the metrics.

    The checkpoint's preprocessing (image size, channels, normalization) is used, and its
    class names must match the dataset's. Without ``data.split_file``, the split recorded
    beside the checkpoint (``<run>/split.csv``) is reused when there is one and
    ``eval.reuse_split`` is true; it must then cover ``data.root`` exactly, else the evaluation
    is refused (``eval.reuse_split=false`` splits other data anew).
    """
    if not cfg.get("ckpt_path"):
        raise ValueError("evaluation needs a checkpoint: train=false ckpt_path=/path/to/x.ckpt")
    ckpt = Path(cfg.ckpt_path)
    if not ckpt.is_file():
        raise FileNotFoundError(f"checkpoint '{ckpt}' does not exist (ckpt_path).")
    run_dir = Path(cfg.paths.output_dir)
    module = MRIClassifier.from_checkpoint(ckpt)  # verified against its checksum
    if is_external(cfg, ckpt):  # a set the checkpoint never saw: all of it, label maps
        write_environment(run_dir, cfg)
        found = score_external(cfg.data, module, str(ckpt), RunDir.of_checkpoint(ckpt), run_dir,
                               external_settings(cfg))  # fmt: skip
        return {f"external/{k}": v for k, v in found.items() if isinstance(v, float)}
    prep = module.preprocessing
    beside = None
    reuse = (cfg.get("eval") or {}).get("reuse_split", True)
    if cfg.data.get("layout", "folder") == "folder" and not cfg.data.get("split_file") and reuse:
        beside = _split_file_beside(ckpt)
        if beside is not None:
            log.info(f"reusing the checkpoint's split: {beside}")
            cfg = cfg.copy()
            OmegaConf.update(cfg, "data.split_file", str(beside), force_add=True)
    try:
        dm = build_datamodule(cfg, preprocessing=prep)
    except DataError as error:
        if beside is None:
            raise
        raise DataError(
            f"{error}\n(The split file is the one of the checkpoint's run, reused to score its "
            "own val/test images. To evaluate on other data, add eval.reuse_split=false: "
            "data.root is then split anew with data.split_seed.)"
        ) from None
    if tuple(dm.class_names) != prep.class_names:
        raise DataError(
            f"checkpoint '{ckpt}' does not fit the classes of the data at '{dm.root}': "
            f"{class_difference(prep.class_names, dm.class_names)}. To score it on this set "
            "as an external one (all its images, through the label maps), add eval.external=true."
        )
    dm.save_split(RunDir(run_dir).split_csv)
    trainer = build_trainer(cfg)
    write_environment(run_dir, cfg)
    results, _ = report_checkpoint(trainer, module, dm, run_dir, None, label=str(ckpt),
                         settings=evidence_settings(cfg, module))  # fmt: skip
    if results:
        write_run_model_card(cfg, run_dir, dm, module, results)
    _summarize(run_dir, str(ckpt), results)
    return {f"{s}/{k}": v for s, r in results.items() for k, v in r.items() if isinstance(v, float)}
