"""Grad-CAM checked against tumour masks: the pointing game and the energy inside the mask.

- **Pointing game** (Zhang et al., 2016): a hit when the map's peak falls inside the mask
  (within ``tolerance`` pixels of it). Chance level is the share of the image the mask
  covers: a peak placed at random hits that often.
- **Energy inside the mask** (Wang et al., 2020, "energy-based pointing game"): the share of
  the map's total mass that lies inside the mask. A uniform map scores the mask's area share.

Both are computed at the mask's resolution (the map is upsampled to it first, as the
overlays are: :func:`braintumor.inference.explain.resize_map`), per image; a map
without positive evidence (all zeros) is a miss with energy 0, and counted as such.
Plain functions of numpy arrays; :func:`summarize` gives the per-class table.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from braintumor.atomic import write_atomically


@dataclass(frozen=True)
class MaskScore:
    """One image's map against its mask."""

    hit: bool  # the peak falls inside the (dilated) mask
    energy: float  # share of the map's mass inside the mask, in [0, 1]
    mask_share: float  # share of the image the mask covers: the chance level of both
    evidence: bool  # the map has positive evidence somewhere (else: a miss, energy 0)


def score_map(cam: np.ndarray, mask: np.ndarray, tolerance: int = 0) -> MaskScore:
    """Score a map ``cam`` (``(H, W)``, >= 0, at the mask's resolution) against a boolean
    ``mask`` of the same shape. ``tolerance``: pixels the mask is grown by for the hit test
    (15 in Zhang et al.; 0 is the strict test). Every maximal pixel counts as the peak when
    there are ties: a hit needs one of them inside."""
    cam = np.asarray(cam, dtype=np.float64)
    mask = np.asarray(mask, dtype=bool)
    if cam.shape != mask.shape:
        raise ValueError(f"map {cam.shape} and mask {mask.shape} differ in shape; resize the map.")
    if not mask.any():
        raise ValueError("the mask is empty: there is no tumour to point at.")
    share = float(mask.mean())
    total = float(np.clip(cam, 0, None).sum())
    if not np.isfinite(total) or total <= 0:
        return MaskScore(False, 0.0, share, False)
    grown = ndimage.binary_dilation(mask, iterations=tolerance) if tolerance > 0 else mask
    peaks = cam >= cam.max()
    energy = float(np.clip(cam, 0, None)[mask].sum() / total)
    return MaskScore(bool((peaks & grown).any()), energy, share, True)


SUMMARY_COLUMNS = ("class", "n", "pointing_game", "pointing_game_correct", "energy_in_mask",
                   "mask_share", "no_evidence")  # fmt: skip


def summarize(
    scores: Sequence[MaskScore], labels: Sequence[str], correct: Sequence[bool]
) -> list[dict[str, object]]:
    """One row per class (sorted), then ``all``: images ``n``, the pointing-game hit rate, the
    hit rate among correctly classified images, the mean energy inside the mask, the mean
    mask share (the chance level of both) and the maps without evidence."""
    if not (len(scores) == len(labels) == len(correct)):
        raise ValueError("one label and one correctness flag per score are needed.")
    rows = []
    for name in [*sorted(set(labels)), "all"]:
        picked = [i for i, label in enumerate(labels) if name in ("all", label)]
        hits = np.array([scores[i].hit for i in picked], dtype=float)
        right = [i for i in picked if correct[i]]
        rows.append({
            "class": name,
            "n": len(picked),
            "pointing_game": float(hits.mean()) if picked else float("nan"),
            "pointing_game_correct": float(np.mean([scores[i].hit for i in right]))
            if right else float("nan"),
            "energy_in_mask": float(np.mean([scores[i].energy for i in picked]))
            if picked else float("nan"),
            "mask_share": float(np.mean([scores[i].mask_share for i in picked]))
            if picked else float("nan"),
            "no_evidence": sum(not scores[i].evidence for i in picked),
        })  # fmt: skip
    return rows


def write_summary_csv(path: str | Path, rows: Sequence[dict[str, object]]) -> Path:
    """The rows of :func:`summarize` as CSV (floats with 4 decimals, empty when undefined)."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=SUMMARY_COLUMNS)
    writer.writeheader()
    for row in rows:
        writer.writerow({
            k: ("" if np.isnan(v) else f"{v:.4f}") if isinstance(v, float) else v
            for k, v in row.items()
        })  # fmt: skip
    return write_atomically(path, text.getvalue())
