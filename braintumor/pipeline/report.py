"""The reports of an evaluated checkpoint: collect its val/test predictions through the
Trainer, calibrate on val, fit the out-of-distribution check, write every split's reports and
evidence (braintumor.evaluation) and log their numbers once."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from lightning.pytorch import Trainer
from lightning.pytorch.loggers import TensorBoardLogger

from braintumor.conformal import threshold
from braintumor.data.datamodule import MRIDataModule
from braintumor.data.taxonomy import tumor_types
from braintumor.evaluation import write_split_reports
from braintumor.evaluation.evidence import SplitData, calibrate, split_evidence
from braintumor.evaluation.metrics import summary_metrics
from braintumor.evaluation.settings import EvaluationSettings
from braintumor.evaluation.subgroups import sequence_of
from braintumor.evaluation.temperature import scale
from braintumor.evaluation.write import SplitReport
from braintumor.inference.ood import OodSettings
from braintumor.inference.ood_fit import fit_ood_statistics
from braintumor.runs.layout import RunDir
from braintumor.training.board import log_split_figures
from braintumor.training.mlflow_logger import log_report_images
from braintumor.training.module import MRIClassifier, metric_tag
from braintumor.vocabulary import metric_key

log = logging.getLogger(__name__)

SUBGROUPS = "subgroups"  # a split's subgroup rows beside its metrics (not in its JSON)


def logged_metrics(split: str, report: SplitReport, per_class: bool = True) -> dict[str, float]:
    """A split report's numbers under their logger names: ``<split>/<name>`` (e.g.
    ``test/f1_macro``) and, with ``per_class``, ``<split>/<precision|recall|f1>_class/<class
    tag>`` (TensorBoard gets those as one table and one figure instead)."""
    values = {metric_key(split, k): v for k, v in report.metrics.items() if isinstance(v, float)}
    for row in report.class_rows() if per_class else []:
        for name in ("precision", "recall", "f1"):
            values[f"{split}/{name}_class/{metric_tag(str(row['class']))}"] = float(row[name])
    return values


def _split_data(dm: MRIDataModule, split: str) -> SplitData:
    """Each image of ``split``, in the order the loaders score them: path, folder, case (and
    source, for the per-source subgroups, when the images come from several sets)."""
    scans = dm.datasets[split].scans
    catalog = dm.catalog
    groups = None
    if catalog.groups is not None:
        group_of = dict(zip((s.path for s in catalog.scans), catalog.groups, strict=True))
        groups = [group_of[s.path] for s in scans]
    several = len(set(catalog.sources)) > 1  # a merged set
    sources = [s.source for s in scans] if several else None
    known = catalog.sequence_of  # from the label maps (figshare's glioma slices are T1C+)
    sequences = [known.get(s.label) or sequence_of(s.label) for s in scans] if known else None
    labels = [s.label for s in scans]
    return SplitData(dm.root, [s.path for s in scans], labels, groups, sources, sequences)


def check_set_data(settings: EvaluationSettings, dm: MRIDataModule) -> None:
    """Refuse, before training, a conformal level that the validation split cannot calibrate:
    fewer images, or cases, than the level needs (``1 / (1 - level) - 1``)."""
    if settings.conformal is None:
        return
    level = float(settings.conformal)
    data = _split_data(dm, "val")
    threshold(np.zeros(len(data.paths)), level)  # raises DataError naming the number needed
    if data.has_cases():
        threshold(np.zeros(len(set(map(str, data.groups)))), level, "validation cases")


def _split_files(dm: MRIDataModule, split: str) -> list[Path]:
    """The image files of ``split``."""
    return [Path(dm.root) / s.path for s in dm.datasets[split].scans]


def _collect(trainer: Trainer, module: MRIClassifier, dm: MRIDataModule, split: str,
             ckpt: str | None, tta: str) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """The raw (uncalibrated) predictions of ``split``, with test-time augmentation ``tta``."""
    run = trainer.validate if split == "val" else trainer.test
    module.tta = tta
    try:
        run(module, datamodule=dm, ckpt_path=ckpt, verbose=False)
    finally:
        module.tta = "none"
    return module.collected_predictions()


def report_checkpoint(
    trainer: Trainer,
    module: MRIClassifier,
    dm: MRIDataModule,
    run_dir: Path,
    ckpt: str | None,
    settings: EvaluationSettings,
    label: str | None = None,
) -> tuple[dict[str, dict], dict[str, Any]]:
    """Evaluate ``module`` (or ``ckpt``) on val and test: calibrate on val, then write each
    split's reports and evidence; return the metrics by split and the calibration.
    ``label``: the checkpoint ``module`` was loaded from (reports name it as their source)."""
    out = RunDir(run_dir).reports
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict] = {}
    boards = [lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)]
    collapse = {}
    types = tumor_types(dm.class_names)
    if types is not None and len(set(types)) < len(types):
        collapse["tumor_type"] = types  # a 44-class model: also score the tumor type alone
    raw: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    plain: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for split in ("val", "test"):
        if len(dm.datasets[split]) == 0:
            log.warning(f"the {split} split is empty: no {split} report.")
            continue
        raw[split] = _collect(trainer, module, dm, split, ckpt, settings.tta)
        if settings.tta != "none":  # the same reports without it, for comparison
            plain[split] = _collect(trainer, module, dm, split, ckpt, "none")
    if not trainer.is_global_zero:
        return {}, {}
    val_groups = _split_data(dm, "val").groups if "val" in raw else None
    calibration = calibrate(settings, raw.get("val"), module.calibration, val_groups,
                            dm.class_names)  # fmt: skip
    if settings.ood is not None and "val" in raw and not calibration.get("ood"):
        calibration["ood"] = fit_ood_statistics(
            module, *(_split_files(dm, s) for s in ("train", "val")), calibration,
            OodSettings(**settings.ood), settings.seed,
        )  # fmt: skip
    for split, (y_true, y_raw) in raw.items():
        data = _split_data(dm, split)
        evidence = split_evidence(out, split, y_true, y_raw, dm.class_names, data, calibration,
                                  settings)  # fmt: skip
        extra = {"checkpoint": ckpt or label or "in-memory weights", **evidence.fields}
        if split in plain:
            calibrated = scale(plain[split][1], calibration["temperature"])
            without = summary_metrics(plain[split][0], calibrated, dm.class_names,
                                      settings.ece_bins)  # fmt: skip
            extra["without_tta"] = {k: without[k] for k in ("accuracy", "f1_macro", "ece")}
        report = write_split_reports(
            out, split, y_true, evidence.probs, dm.class_names, extra, collapse,
            ece_bins=settings.ece_bins, per_class_extra=evidence.per_class,
            paths=data.first(len(y_true)).paths, min_support=settings.min_support,
        )  # fmt: skip
        results[split] = {**report.metrics, SUBGROUPS: evidence.subgroups}  # for the card
        for lg in trainer.loggers:  # the report's numbers, computed once, under their names
            values = logged_metrics(split, report, per_class=lg not in boards)
            lg.log_metrics(values, step=trainer.global_step)
        for board in boards:  # the figures just written; per class: one table, one figure
            log_split_figures(board, out, split, report.class_rows(), trainer.global_step)
    log_report_images(trainer.loggers, out)  # MLflow: the report figures as artifacts
    return results, calibration
