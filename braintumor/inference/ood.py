"""Out-of-distribution check: is an image an MRI slice like those the model was trained on?

A classifier answers for any input: a blank image, a photo or random noise gets a class and
a probability. Before a prediction is shown, an image must pass four tests, fitted when the
model is evaluated and stored with its calibration (checkpoint and ONNX sidecar alike):

1. **contrast**: a blank or nearly uniform image (grey-level standard deviation, 0..1, below
   ``min_contrast``) is refused;
2. **colour**: a strongly coloured image (mean chroma above ``max_colour``; MRI slices are
   grey) is refused;
3. **intensity statistics**: a Mahalanobis distance between a few statistics of the image
   (:data:`FEATURES`, on a 64-pixel grey thumbnail) and those of training scans; refused
   above a threshold chosen on validation scans;
4. **energy** (Liu et al., 2020): ``-T logsumexp(logits / T)`` on the model's calibrated
   logits; high energy means the network recognises none of its classes. Refused above a
   threshold chosen on validation scans.

The two thresholds are conformal quantiles of the validation scores, each at
``1 - (1 - acceptance) / 2``, so that at least ``acceptance`` of in-distribution scans pass
both (:func:`fit_ood`). Plain numpy: the ONNX prediction path applies it without PyTorch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from braintumor import constraints
from braintumor.constraints import Interval

FEATURES = ("mean", "contrast", "dark", "border", "edges", "roughness")
THUMBNAIL = 64
SHRINKAGE = 0.1  # of the correlation matrix towards the identity (few reference scans)
SCALE_FLOOR = 0.01  # a statistic that hardly varies in training still allows this much
VERSION = 1


OOD_CONSTRAINTS = {
    "acceptance": Interval(0.5, 1, closed="left"),
    "min_contrast": Interval(0, 1),
    "max_colour": Interval(0, 1),
    "reference_images": Interval(1, whole=True),
}


@dataclass(frozen=True)
class OodSettings:
    """``eval.ood.*``: how the check is fitted (see conf/train.yaml)."""

    acceptance: float = 0.99  # share of in-distribution scans the check should accept
    min_contrast: float = 0.02  # grey-level std (0..1) below which an image is blank
    max_colour: float = 0.08  # mean chroma (0..1) above which an image is a colour picture
    reference_images: int = 500  # training scans the intensity statistics are fitted on

    def __post_init__(self) -> None:
        values = {k: getattr(self, k) for k in OOD_CONSTRAINTS}
        constraints.check("eval.ood", values, OOD_CONSTRAINTS)


@dataclass(frozen=True)
class OodVerdict:
    """Whether an image passed the check and, if not, why (in words) and which kind of
    refusal it is: ``not_mri`` only for what the image checks establish (blank, colour),
    ``unfamiliar`` for an image that may well be a scan, but unlike the training scans."""

    accepted: bool
    reason: str = ""
    kind: str = ""  # not_mri | unfamiliar (refused), "" (accepted)


ACCEPTED = OodVerdict(True)


def grey_thumbnail(pixels: np.ndarray) -> np.ndarray:
    """``uint8`` ``(C, H, W)`` -> a ``THUMBNAIL`` x ``THUMBNAIL`` grey image in 0..1."""
    grey = pixels[0] if pixels.shape[0] == 1 else pixels.mean(axis=0).round().astype(np.uint8)
    small = Image.fromarray(np.ascontiguousarray(grey)).resize(
        (THUMBNAIL, THUMBNAIL), Image.Resampling.BILINEAR
    )
    return np.asarray(small, dtype=np.float64) / 255.0


def image_features(pixels: np.ndarray) -> np.ndarray:
    """The statistics of :data:`FEATURES` of one ``uint8`` ``(C, H, W)`` image: mean and
    standard deviation of grey levels, share of dark pixels, mean of the border frame, log
    mean gradient, and log gradient-to-contrast ratio (noise is rough, a slice is smooth)."""
    x = grey_thumbnail(pixels)
    contrast = x.std()
    gradient = (np.abs(np.diff(x, axis=0)).mean() + np.abs(np.diff(x, axis=1)).mean()) / 2
    frame = np.concatenate([x[:4].ravel(), x[-4:].ravel(), x[:, :4].ravel(), x[:, -4:].ravel()])
    return np.array([
        x.mean(), contrast, (x < 0.1).mean(), frame.mean(),
        math.log(gradient + 1e-3), math.log((gradient + 1e-3) / (contrast + 1e-3)),
    ])  # fmt: skip


def energy(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """``-T logsumexp(logits / T)`` per row (lower: more like the training data)."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    top = z.max(axis=1)
    return -temperature * (top + np.log(np.exp(z - top[:, None]).sum(axis=1)))


def conformal_threshold(scores: np.ndarray, level: float) -> tuple[float, str]:
    """The ``ceil((n + 1) level)``-th smallest of ``n`` held-out scores: a new score from the
    same distribution is at most this with probability >= ``level``. With too few scores
    for ``level``, the largest plus its distance to the median (and a note saying so)."""
    s = np.sort(np.asarray(scores, dtype=np.float64))
    k = math.ceil((len(s) + 1) * level)
    if k <= len(s):
        return float(s[k - 1]), ""
    margin = float(s[-1] - np.median(s)) or 1e-6
    note = (
        f"{len(s)} validation scans are too few for the {level:.3f} quantile: threshold set "
        "beyond the largest validation score"
    )
    return float(s[-1] + margin), note


def fit_ood(
    reference: np.ndarray,
    val_features: np.ndarray,
    val_colour: Sequence[float],
    val_energy: np.ndarray | None,
    settings: OodSettings,
) -> dict[str, Any]:
    """The stored statistics of the check (plain values, JSON-ready).

    ``reference``: :func:`image_features` of training scans; ``val_*``: the features, colour
    and energies of validation scans (``val_energy`` ``None``: no energy test).
    """
    reference, val_features = np.atleast_2d(reference), np.atleast_2d(val_features)
    if len(reference) < 2 or len(val_features) < 2:
        raise ValueError("the out-of-distribution check needs >= 2 training and val scans.")
    center = reference.mean(axis=0)
    scale = np.maximum(reference.std(axis=0), SCALE_FLOOR)
    z = (reference - center) / scale
    correlation = (z.T @ z) / len(z)
    shrunk = (1 - SHRINKAGE) * correlation + SHRINKAGE * np.eye(len(center))
    stats: dict[str, Any] = {
        "version": VERSION,
        "acceptance": settings.acceptance,
        "features": list(FEATURES),
        "center": center.tolist(),
        "scale": scale.tolist(),
        "precision": np.linalg.inv(shrunk).tolist(),
        "min_contrast": min(settings.min_contrast, 0.5 * float(val_features[:, 1].min())),
        "max_colour": max(settings.max_colour, 2.0 * float(np.max(val_colour))),
        "reference_scans": len(reference),
        "validation_scans": len(val_features),
    }
    level = 1 - (1 - settings.acceptance) / 2
    notes = []
    stats["distance_threshold"], note = conformal_threshold(distance(stats, val_features), level)
    notes.append(note)
    if val_energy is not None:
        stats["energy_threshold"], note = conformal_threshold(val_energy, level)
        notes.append(note)
    stats["note"] = "; ".join(dict.fromkeys(n for n in notes if n))
    verdicts = [
        check(stats, f, c, None if val_energy is None else e)
        for f, c, e in zip(
            val_features, val_colour, _or_none(val_energy, len(val_features)), strict=True
        )
    ]
    stats["validation_accepted"] = float(np.mean([v.accepted for v in verdicts]))
    return stats


def _or_none(values: np.ndarray | None, n: int) -> Sequence[Any]:
    return [None] * n if values is None else list(values)


def distance(stats: Mapping[str, Any], features: np.ndarray) -> np.ndarray:
    """Mahalanobis distances of rows of :func:`image_features` from the training scans."""
    z = (np.atleast_2d(features) - np.asarray(stats["center"])) / np.asarray(stats["scale"])
    return np.sqrt(np.einsum("ij,jk,ik->i", z, np.asarray(stats["precision"]), z))


def check(
    stats: Mapping[str, Any] | None,
    features: np.ndarray,
    colour: float,
    energy_value: float | None = None,
) -> OodVerdict:
    """Apply the stored check to one image: its :func:`image_features`, its colourfulness
    (mean chroma, 0..1) and the energy of its logits (``None``: not available)."""
    if not stats:
        return ACCEPTED
    contrast = float(features[1])
    if contrast < stats["min_contrast"]:
        return OodVerdict(False, "the image is blank or nearly uniform", "not_mri")
    if colour > stats["max_colour"]:
        return OodVerdict(
            False, "the image is in colour (MRI slices are grey): a photo or drawing?", "not_mri"
        )
    d = float(distance(stats, features)[0])
    if d > stats["distance_threshold"]:
        return OodVerdict(
            False,
            f"its intensities and texture are unlike the training scans (distance {d:.1f}, "
            f"limit {stats['distance_threshold']:.1f})",
            "unfamiliar",
        )
    limit = stats.get("energy_threshold")
    if energy_value is not None and limit is not None and energy_value > limit:
        return OodVerdict(
            False,
            f"the model recognises none of its classes in it (energy {energy_value:.2f}, "
            f"limit {limit:.2f})",
            "unfamiliar",
        )
    return ACCEPTED
