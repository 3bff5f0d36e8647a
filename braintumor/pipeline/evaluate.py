"""``evaluate(cfg)``: the val/test reports of an existing checkpoint
(``python train.py train=false ckpt_path=...``), or, for a set it never saw, its external
reports (:mod:`braintumor.pipeline.external`)."""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from braintumor.data.preprocessing import class_difference
from braintumor.errors import DataError
from braintumor.pipeline.build import build_datamodule, build_trainer
from braintumor.pipeline.card import write_run_model_card
from braintumor.pipeline.external import external_settings, score_external
from braintumor.pipeline.external_sets import is_external
from braintumor.pipeline.report import report_checkpoint
from braintumor.pipeline.settings import evaluation_settings
from braintumor.pipeline.train import resolved, summarize
from braintumor.runs.environment import write_environment
from braintumor.runs.layout import RunDir
from braintumor.training.module import MRIClassifier

log = logging.getLogger(__name__)


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
    evaluation = evaluation_settings(cfg)  # checked before the checkpoint is read
    module = MRIClassifier.from_checkpoint(ckpt)  # verified against its checksum
    if is_external(cfg, ckpt):  # a set the checkpoint never saw: all of it, label maps
        write_environment(run_dir, resolved(cfg))
        found = score_external(cfg.data, module, str(ckpt), RunDir.of_checkpoint(ckpt), run_dir,
                               external_settings(cfg))  # fmt: skip
        return {f"external/{k}": v for k, v in found.items() if isinstance(v, float)}
    prep = module.preprocessing
    beside = None
    reuse = cfg.eval.reuse_split
    if cfg.data.layout == "folder" and not cfg.data.get("split_file") and reuse:
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
    write_environment(run_dir, resolved(cfg))
    results, _ = report_checkpoint(trainer, module, dm, run_dir, None, evaluation,
                                   label=str(ckpt))  # fmt: skip
    if results:
        write_run_model_card(cfg, run_dir, dm, module, results)
    summarize(run_dir, str(ckpt), results)
    return {f"{s}/{k}": v for s, r in results.items() for k, v in r.items() if isinstance(v, float)}
