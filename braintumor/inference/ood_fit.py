"""Fit the out-of-distribution check of a trained model (:mod:`braintumor.inference.ood`) on
its training and validation scans, read from disk and scored exactly as ``predict`` and the
web page will score an upload (same decoding, preprocessing, test-time views, temperature)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from braintumor.inference import ood
from braintumor.inference.predictor import MAX_PIXELS
from braintumor.inference.preprocess import decode_scan
from braintumor.inference.torch_predictor import TorchPredictor

log = logging.getLogger(__name__)
BATCH = 32


def _decoded(paths: Sequence[Path], channels: int) -> list:
    scans = []
    for path in paths:
        try:
            scans.append(decode_scan(path, channels, MAX_PIXELS))
        except Exception as error:  # unreadable now: the reports list such files already
            log.warning(f"out-of-distribution fit: skipped {path} ({error})")
    return scans


def fit_ood_statistics(
    module: torch.nn.Module,
    train_paths: Sequence[Path],
    val_paths: Sequence[Path],
    calibration: Mapping[str, Any],
    settings: ood.OodSettings,
    seed: int = 0,
) -> dict[str, Any] | None:
    """The check's statistics for ``module`` with ``calibration`` (temperature, test-time
    augmentation): image statistics of up to ``settings.reference_images`` training scans,
    thresholds from every validation scan. ``None`` (with a warning) when there are too few
    scans. The module is returned to the device it was on."""
    if len(train_paths) < 2 or len(val_paths) < 2:
        log.warning("no out-of-distribution check: fewer than 2 training or validation scans.")
        return None
    device = next(module.parameters()).device
    predictor = TorchPredictor(module, "cuda" if device.type == "cuda" else "cpu")
    predictor.calibration = {k: v for k, v in calibration.items() if k != "ood"}
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.permutation(len(train_paths))[: settings.reference_images])
    channels = predictor.channels
    reference = [ood.image_features(s.pixels) for s in
                 _decoded([train_paths[i] for i in chosen], channels)]  # fmt: skip
    features, colour, energies = [], [], []
    for start in range(0, len(val_paths), BATCH):
        scans = _decoded(val_paths[start : start + BATCH], channels)
        if not scans:
            continue
        answer = predictor.assess(scans)
        features += [ood.image_features(s.pixels) for s in scans]
        colour += [s.colour for s in scans]
        energies += list(answer.energy)
    module.to(device)
    if len(reference) < 2 or len(features) < 2:
        log.warning("no out-of-distribution check: fewer than 2 readable scans.")
        return None
    stats = ood.fit_ood(np.array(reference), np.array(features), colour, np.array(energies),
                        settings)  # fmt: skip
    log.info(
        f"out-of-distribution check fitted on {len(reference)} training and {len(features)} "
        f"validation scans: {100 * stats['validation_accepted']:.1f}% of validation accepted "
        f"(target {100 * settings.acceptance:.0f}%)"
    )
    return stats
