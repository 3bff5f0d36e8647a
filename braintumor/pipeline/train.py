"""``train(cfg)``: seed -> datamodule, module, callbacks, loggers, trainer -> fit -> evaluate the
best checkpoint on val and test -> reports and the model card in the run directory -> an
external set left out, when there is one -> the metrics (what a sweeper optimizes)."""

from __future__ import annotations

import logging
import signal
import warnings
from pathlib import Path

from lightning.pytorch import seed_everything
from lightning.pytorch.utilities import rank_zero_only
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf

from braintumor.data.skipped import write_skipped
from braintumor.evaluation.summary import format_metrics_table
from braintumor.pipeline.build import (
    build_datamodule,
    build_module,
    build_trainer,
    out_of_memory_advice,
)
from braintumor.pipeline.card import write_run_model_card
from braintumor.pipeline.external import external_settings, score_external
from braintumor.pipeline.external_sets import leave_source_out
from braintumor.pipeline.hparams import differing_keys, run_hparams
from braintumor.pipeline.report import check_set_data, report_checkpoint
from braintumor.pipeline.settings import evaluation_settings
from braintumor.runs.checkpoint_file import store_calibration
from braintumor.runs.checkpoints import (
    check_compatible,
    checkpoint_preprocessing,
    resolve_checkpoint,
)
from braintumor.runs.environment import write_environment
from braintumor.runs.layout import RunDir
from braintumor.training.hparams import log_final, log_start
from braintumor.training.module import MRIClassifier

log = logging.getLogger(__name__)

# Lightning attaches its own console handler to the "lightning" logger; under Hydra's logging
# setup every message would print twice, so its records go through the root handlers only.
if logging.getLogger().handlers:
    logging.getLogger("lightning").handlers.clear()
# Lightning 2.6 on torch >= 2.10 warns about its own use of a deprecated pytree API.
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
# torchmetrics' calibration error on a transposed view: a copy, not a problem (a quiet terminal).
warnings.filterwarnings("ignore", message=r"torch\.searchsorted\(\): input value tensor is non-")


def summarize(run_dir: Path, ckpt: str | None, results: dict[str, dict]) -> None:
    """Log where the run's checkpoint, reports and curves are, with the metrics table."""
    lines = ["", f"Run directory: {run_dir}", f"Checkpoint:    {ckpt or 'in-memory weights'}"]
    if results:
        lines += ["", format_metrics_table(results), "", f"Reports:       {run_dir / 'reports'}"]
    lines.append("Curves:        make tensorboard  (or: tensorboard --logdir outputs)")
    log.info("\n".join(lines))


def resolved(cfg: DictConfig) -> dict:
    """The composed config as plain values (what ``environment.json`` records)."""
    return OmegaConf.to_container(cfg, resolve=True)


def train(cfg: DictConfig) -> dict[str, float]:
    """Fit ``cfg.model`` on ``cfg.data``, then evaluate the best checkpoint; return metrics."""
    cfg = leave_source_out(cfg)  # eval.held_out: train without a source, then score it
    evaluation = evaluation_settings(cfg)  # checked before anything is trained
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
    check_set_data(evaluation, dm)  # eval.conformal: enough validation cases, before training
    module = build_module(cfg, dm)
    trainer = build_trainer(cfg)
    if main_process:
        write_environment(run_dir, resolved(cfg))
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
        results, calibration = report_checkpoint(trainer, module, dm, run_dir, ckpt, evaluation)
        if main_process and calibration.get("source") == "fitted on validation":
            module.calibration = {k: v for k, v in calibration.items() if k != "source"}
            if ckpt is not None:  # the temperature and threshold travel with the weights
                store_calibration(ckpt, module.calibration)
        if main_process and results:
            write_run_model_card(cfg, run_dir, dm, module, results)
    for split, values in results.items():
        metrics.update({f"{split}/{k}": v for k, v in values.items() if isinstance(v, float)})
    external = cfg.eval.external_data
    if external and main_process:  # a set left out of training (leave_one_source_out)
        scorer = MRIClassifier.from_checkpoint(ckpt) if ckpt else module
        found = score_external(external, scorer, ckpt or "in-memory weights", RunDir(run_dir),
                               run_dir, external_settings(cfg))  # fmt: skip
        metrics.update({f"external/{k}": v for k, v in found.items() if isinstance(v, float)})
    log_final(trainer, params, metrics, differing_keys())
    if main_process:
        summarize(run_dir, ckpt, results)
    return metrics
