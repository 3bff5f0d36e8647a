"""Expected calibration error: torchmetrics' top-label ECE over collected probabilities (the
one implementation of the project)."""

from __future__ import annotations

import numpy as np
import torch
from torchmetrics.functional.classification import multiclass_calibration_error


def expected_calibration_error(y_true: np.ndarray, y_prob: np.ndarray, n_bins: int) -> float:
    """Top-label ECE: the |accuracy - confidence| gap over ``n_bins`` equal-width confidence
    bins, weighted by the share of images in each bin (torchmetrics'
    ``multiclass_calibration_error`` with ``norm="l1"``); NaN without images.

    Parameters
    ----------
    y_true : (n,) class indices.
    y_prob : (n, k) class probabilities (rows sum to 1).
    n_bins : number of bins (the model's ``ece_bins``).
    """
    y_true = np.asarray(y_true)
    y_prob = np.asarray(y_prob)
    if len(y_true) == 0:
        return float("nan")
    value = multiclass_calibration_error(
        torch.as_tensor(y_prob, dtype=torch.float32),
        torch.as_tensor(y_true, dtype=torch.long),
        num_classes=y_prob.shape[1],
        n_bins=n_bins,
        norm="l1",
    )
    return float(value)
