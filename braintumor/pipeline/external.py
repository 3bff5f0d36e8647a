"""Score a checkpoint on an external set (one it never saw): every readable image of the set,
through the label maps, without the near-copies of the model's training images, and, where the
set ships tumour masks (figshare3), Grad-CAM checked against them.

``python train.py train=false ckpt_path=CKPT data=<set> data.root=DIR`` lands here when the set
is foreign to the checkpoint (``eval.external``); after training, ``eval.external_data``
scores a set left out (``experiment=leave_one_source_out``). The reports go to the model's run
folder, ``reports/external/<source>/`` (:mod:`braintumor.evaluation.external`).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader

from braintumor.data.catalog import Catalog
from braintumor.data.dataset import ScanDataset
from braintumor.data.label_maps import map_labels
from braintumor.data.sources import LAYOUTS
from braintumor.errors import UsageError
from braintumor.evaluation.external import ExternalImages, write_external_reports
from braintumor.evaluation.external_card import add_external_section
from braintumor.evaluation.label_space import model_families, shared_labels
from braintumor.evaluation.near_copies import (
    NearCopy,
    find_near_copies,
    fingerprints,
    training_images,
    write_near_copies_csv,
)
from braintumor.evaluation.pointing_game import MaskScore, score_map, summarize, write_summary_csv
from braintumor.evaluation.settings import EvaluationSettings
from braintumor.inference.explain import grad_cam, resize_map, target_layer
from braintumor.pipeline.external_sets import data_source, training_record, training_sources
from braintumor.pipeline.settings import ScoringLoader, evaluation_settings, scoring_loader
from braintumor.runs.layout import RunDir
from braintumor.softmax import softmax_tensor
from braintumor.training.module import MRIClassifier

log = logging.getLogger(__name__)

MASK_READERS = {
    ending: layout.module().read_mask
    for layout in LAYOUTS.values()
    if hasattr(layout.module(), "read_mask")
    for ending in layout.file_endings
}
"""File endings whose scans carry a tumour mask -> a reader of it (figshare's slices)."""


@dataclass(frozen=True)
class ExternalSettings:
    """How an external set is scored: the evidence settings and the images' loader."""

    evaluation: EvaluationSettings
    loader: ScoringLoader


def external_settings(cfg: DictConfig) -> ExternalSettings:
    """The settings of ``cfg`` (``eval.*``, the loader's ``data.*``), checked once."""
    return ExternalSettings(evaluation_settings(cfg), scoring_loader(cfg.data))


def _label_map_file(data_cfg: DictConfig, source: str) -> str | None:
    """The user's label map of ``source``: ``data.label_map`` or ``data.label_maps.<source>``."""
    return data_cfg.get("label_map") or (data_cfg.get("label_maps") or {}).get(source)


def _source_label(label: str, source: str) -> str:
    """A merged catalog's ``<source>/<label>`` -> ``<label>``; other labels as they are."""
    return label.removeprefix(f"{source}/")


def _external_catalog(data_cfg: DictConfig, module: MRIClassifier) -> Catalog:
    """Every readable scan of the set (no split: all are scored), decoded later from disk."""
    cfg = OmegaConf.to_container(data_cfg, resolve=True)
    prep = module.preprocessing
    cfg.update(
        val_fraction=0.0, test_fraction=0.0, split_file=None, n_folds=None, fold=None,
        cache="none", image_size=prep.image_size, channels=prep.channels,
        mean=list(prep.mean), std=list(prep.std),
    )  # fmt: skip
    dm = instantiate(cfg, _convert_="all")
    dm.prepare_data()
    dm.setup("fit")
    return dm.catalog


def _remove_near_copies(
    catalog: Catalog, data_cfg: DictConfig, run: RunDir | None, settings: ExternalSettings
) -> tuple[list[int], list[NearCopy], Path | None]:
    """Indices of the catalog's scans to score, the near-copies removed, the training root."""
    keep = list(range(len(catalog.scans)))
    if not settings.evaluation.remove_near_copies:
        return keep, [], None
    seen = training_images(run)
    hash_size, w = int(data_cfg.hash_size), max(1, settings.loader.workers)
    cache_dir = Path(data_cfg.cache_dir) if data_cfg.get("cache_dir") else None
    ours = fingerprints(catalog.root, [s.path for s in catalog.scans], hash_size, cache_dir, w)
    theirs = fingerprints(seen.root, seen.paths, hash_size, cache_dir, w)
    split_of = dict(zip(seen.paths, seen.splits, strict=True))
    cropped = float(data_cfg.cropped_copy_similarity)
    copies = find_near_copies(
        ours, theirs, split_of, int(data_cfg.near_duplicate_distance),
        (catalog.root, seen.root), cropped if data_cfg.group_cropped_copies else None,
        w,
    )  # fmt: skip
    removed = {c.path for c in copies}
    return [i for i in keep if catalog.scans[i].path not in removed], copies, seen.root


def _targets(p: np.ndarray, candidates: Sequence[Sequence[int] | None], by: str) -> list[int]:
    """The class each map explains: the answer (``by="prediction"``), or the most probable of
    the model's classes of the image's true label (``"label"``; the answer when it has none)."""
    targets = []
    for row, classes in zip(p, candidates, strict=True):
        use_true = by == "label" and classes
        targets.append(max(classes, key=lambda k: row[k]) if use_true else int(row.argmax()))
    return targets


def _predict(
    module: MRIClassifier,
    dataset: ScanDataset,
    paths: Sequence[Path],
    settings: ExternalSettings,
    candidates: Sequence[Sequence[int] | None],
) -> tuple[np.ndarray, list[MaskScore | None]]:
    """Calibrated probabilities of every image, and for those with a tumour mask the Grad-CAM
    of a class (:func:`_targets`, ``eval.pointing_target``) scored against it.
    ``candidates``: per image, the model's classes of its true label (``None``: none)."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    module = module.to(device).eval()
    temperature = float(module.calibration.get("temperature", 1.0))
    has_masks = any(Path(p).suffix.lower() in MASK_READERS for p in paths)
    layer = target_layer(module) if has_masks else None
    workers = settings.loader.workers
    loader = DataLoader(dataset, batch_size=settings.loader.batch_size, shuffle=False,
                        num_workers=workers,
                        multiprocessing_context=settings.loader.multiprocessing_context
                        if workers > 0 else None)  # fmt: skip
    probs: list[np.ndarray] = []
    scores: list[MaskScore | None] = []
    start = 0
    for images, _ in loader:
        batch_paths = paths[start : start + len(images)]
        start += len(images)
        with torch.no_grad():
            logits = module(images.to(device)).float()
        p = softmax_tensor(logits, temperature).cpu().numpy()
        probs.append(p)
        readers = [MASK_READERS.get(Path(path).suffix.lower()) for path in batch_paths]
        if layer is None or not any(readers):
            scores += [None] * len(images)
            continue
        targets = _targets(p, candidates[start - len(images) : start],
                           settings.evaluation.pointing_target)  # fmt: skip
        maps, _ = grad_cam(module, layer, images.to(device), targets)
        for cam, path, reader in zip(maps, batch_paths, readers, strict=True):
            if reader is None:
                scores.append(None)
                continue
            mask = reader(path)
            if not mask.any():
                scores.append(None)  # a slice without a drawn tumour: nothing to point at
                continue
            upsampled = resize_map(cam.cpu(), tuple(mask.shape))
            scores.append(score_map(upsampled, mask, settings.evaluation.pointing_tolerance))
    return (np.concatenate(probs) if probs else np.zeros((0, len(module.class_names)))), scores


def score_external(
    data_cfg: DictConfig,
    module: MRIClassifier,
    checkpoint: str,
    run: RunDir | None,
    fallback_run: Path,
    settings: ExternalSettings,
) -> dict[str, Any]:
    """Score ``module`` (from ``checkpoint``, trained in ``run``) on the set of ``data_cfg``
    and write its reports into ``<run>/reports/external/<source>/`` (``fallback_run`` when
    the checkpoint lies outside a run folder); return its metrics."""
    source = data_source(data_cfg)
    record = training_record(run)
    trained_on = training_sources(record)
    if source in trained_on:
        raise UsageError(
            f"the checkpoint was trained on source '{source}' ({run.root if run else ''}): it is "
            "not an external set for it. Score its own test split with eval.external=false."
        )
    catalog = _external_catalog(data_cfg, module)
    label_of = [_source_label(scan.label, source) for scan in catalog.scans]
    labels = sorted(set(label_of))
    mapped = map_labels(source, labels, _label_map_file(data_cfg, source))
    families = {label: family for label, (family, _) in mapped.items()}
    space = shared_labels(
        model_families(module.class_names, trained_on, record.get("label_map")),
        families, model_name=f"the model ({checkpoint})", external_name=f"'{source}'",
    )  # fmt: skip
    keep, copies, training_root = _remove_near_copies(catalog, data_cfg, run, settings)
    scans = [catalog.scans[i] for i in keep]
    scan_labels = [label_of[i] for i in keep]
    groups = [catalog.groups[i] for i in keep] if catalog.groups is not None else None
    prep = module.preprocessing
    dataset = ScanDataset(catalog.root, scans, sorted({s.label for s in scans}), prep.channels,
                          prep.eval_transform())  # fmt: skip
    paths = [catalog.root / s.path for s in scans]
    log.info(f"scoring {checkpoint} on {len(scans)} images of '{source}' ({catalog.root}); "
             f"{len(copies)} near-copies of its training images removed")  # fmt: skip
    index = {label: [k for k, m in enumerate(space.model_label) if m == label]
             for label in space.labels}  # fmt: skip
    candidates = [index.get(space.external_label[label]) for label in scan_labels]
    probs, mask_scores = _predict(module, dataset, paths, settings, candidates)
    reports = RunDir(run.root if run is not None else fallback_run).reports
    out = reports / "external" / source
    extra = {
        "checkpoint": checkpoint, "source": source, "root": str(catalog.root),
        "trained_on": trained_on or "unknown (no run record)",
        "near_copies_removed": len(copies),
        "near_copies_removed_by_split": {s: sum(c.training_split == s for c in copies)
                                         for s in ("train", "val")},
        "near_copies_checked": settings.evaluation.remove_near_copies,
        "skipped_unreadable": len(catalog.skipped),
        "temperature": float(module.calibration.get("temperature", 1.0)),
    }  # fmt: skip
    if training_root is not None:
        write_near_copies_csv(out / "near_copies.csv", copies, training_root)
    images = ExternalImages([s.path for s in scans], scan_labels, probs, module.class_names,
                            groups)  # fmt: skip
    scored = [i for i, s in enumerate(mask_scores) if s is not None]
    if scored:  # per true family; "correct" in the shared labels (never when out of set)
        true = [space.external_label[scan_labels[i]] for i in scored]
        answer = space.probabilities(probs[scored]).argmax(1)
        correct = [t == space.labels[a] for t, a in zip(true, answer, strict=True)]
        names = [families[scan_labels[i]] for i in scored]
        rows = summarize([mask_scores[i] for i in scored], names, correct)
        write_summary_csv(out / "pointing_game.csv", rows)
        extra["pointing_game"] = {
            "target": "the true label's most probable class"
            if settings.evaluation.pointing_target == "label"
            else "the predicted class",
            "tolerance_px": settings.evaluation.pointing_tolerance,
            **{k: v for k, v in rows[-1].items() if k != "class"},
        }
    ev = settings.evaluation
    metrics = write_external_reports(
        out,
        images,
        space,
        extra,
        bootstrap=ev.bootstrap,
        seed=ev.seed,
        ece_bins=ev.ece_bins,
        min_support=ev.min_support,
    )
    add_external_section(reports / "model_card.md", reports)  # the run's card, when it has one
    if metrics["n"] == 0:
        warnings.warn(
            f"nothing of '{source}' was scored: {len(copies)} near-copies of the training images "
            f"removed, {metrics['n_out_of_label_set']} images out of the model's label set "
            f"(counts in {out / 'external_metrics.json'}).",
            stacklevel=2,
        )
    log.info(
        f"external '{source}': {metrics['n']} images scored at the {space.level} level, "
        f"accuracy {metrics['accuracy']:.3f}, macro F1 {metrics['f1_macro']:.3f}; "
        f"{metrics['n_out_of_label_set']} out of the model's label set -> {out}"
    )
    return metrics
