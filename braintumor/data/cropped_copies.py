"""Copies of a scan with a slightly different crop or border (screenshots of one image).

A perceptual hash of the whole image moves by far more than its near-duplicate threshold when
1-3% of one side is cut away, so such copies would land in different splits. Here they are
found in two steps:

1. candidates: a coarse hash of the image's centre (:func:`crop_hash`, 64 bits of the central
   84%, which a few percent of border barely changes) within ``max_hash_distance`` bits, and
   aspect ratios that a crop of at most :data:`MAX_CROP` per side can explain;
2. verification: the sub-window of one image that best matches the other is found from their
   row and column intensity profiles (crop fractions ``0..MAX_CROP`` per side), and the two are
   compared pixel by pixel there (normalized correlation at 128 px). Only pairs that correlate at
   ``min_similarity`` or more are grouped: distinct slices of one case, however similar their
   hashes, do not align that well.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import imagehash
import numpy as np
from PIL import Image

from braintumor.atomic import write_atomically
from braintumor.data.duplicates import near_duplicate_pairs
from braintumor.data.image import open_scan, to_channels

MAX_CROP = 0.06  # the largest share of a side a copy may have lost
CENTRE = 0.08  # the crop hash looks at the image without this share of each side
SIDE = 160  # thumbnails compared, px (a 94% window still holds 128 px)
COMPARED = 128  # the aligned windows are compared at this size
_FRACTIONS = np.linspace(0.0, MAX_CROP, 13)
PAIR_SCORES = "cropped_copy_scores.json"
"""The file name of the verified pairs' similarities, beside the fingerprint caches."""


def crop_hash(gray: Image.Image) -> str:
    """64-bit pHash of the central part of a grayscale image (hex)."""
    w, h = gray.size
    box = (round(CENTRE * w), round(CENTRE * h), w - round(CENTRE * w), h - round(CENTRE * h))
    return str(imagehash.phash(gray.crop(box), hash_size=8))


def thumbnail(path: str | Path) -> np.ndarray:
    """``SIDE`` x ``SIDE`` ``uint8`` grayscale of an image file (aspect not kept)."""
    with open_scan(path) as image:
        image.draft("L" if image.mode in ("L", "RGB") else None, (2 * SIDE, 2 * SIDE))
        gray = to_channels(image, 1)
        return np.asarray(gray.resize((SIDE, SIDE), Image.BILINEAR), dtype=np.uint8)


@cache
def _windows(n_source: int, n_target: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (lo, hi) crop of ``_FRACTIONS``: sample positions into a profile of
    ``n_source`` values, as floor indices and weights, for ``n_target`` samples each (the
    same for every pair: computed once per size)."""
    lo, hi = np.meshgrid(_FRACTIONS, 1.0 - _FRACTIONS, indexing="ij")
    lo, hi = lo.ravel(), hi.ravel()
    t = np.linspace(0.0, 1.0, n_target)
    positions = (lo[:, None] + (hi - lo)[:, None] * t[None, :]) * (n_source - 1)
    floor = np.clip(np.floor(positions).astype(np.int64), 0, n_source - 2)
    return np.stack([lo, hi], 1), floor, positions - floor


def _centred(x: np.ndarray) -> np.ndarray:
    x = x - x.mean(axis=-1, keepdims=True)
    norm = np.sqrt((x * x).sum(axis=-1, keepdims=True))
    return x / np.where(norm > 0, norm, 1.0)


def _best_window(source: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """The crop ``(lo, hi)`` (fractions) of ``source`` whose resampled profile best matches
    ``target``'s."""
    bounds, floor, weight = _windows(len(source), len(target))
    resampled = source[floor] * (1 - weight) + source[floor + 1] * weight
    scores = _centred(resampled) @ _centred(target[None, :])[0]
    lo, hi = bounds[int(np.argmax(scores))]
    return float(lo), float(hi)


@dataclass(frozen=True)
class _Thumb:
    """A thumbnail with what each comparison needs of it, computed once per image."""

    pixels: np.ndarray  # SIDE x SIDE uint8
    columns: np.ndarray  # its column and row intensity profiles (float64)
    rows: np.ndarray
    small: np.ndarray  # resized to COMPARED x COMPARED (float64), with its profiles
    small_columns: np.ndarray
    small_rows: np.ndarray

    @classmethod
    def of(cls, pixels: np.ndarray) -> _Thumb:
        full = pixels.astype(np.float64)
        small = np.asarray(
            Image.fromarray(pixels).resize((COMPARED, COMPARED), Image.BILINEAR), float
        )
        return cls(pixels, full.mean(0), full.mean(1), small, small.mean(0), small.mean(1))


def _inside(a: _Thumb, b: _Thumb) -> float:
    """Correlation of ``b`` with the window of ``a`` it is best explained as a crop of."""
    x0, x1 = _best_window(a.columns, b.small_columns)
    y0, y1 = _best_window(a.rows, b.small_rows)
    n = SIDE - 1
    box = (x0 * n, y0 * n, x1 * n + 1, y1 * n + 1)
    window = np.asarray(
        Image.fromarray(a.pixels).resize((COMPARED, COMPARED), Image.BILINEAR, box=box), float
    )
    return float((_centred(window.ravel()) * _centred(b.small.ravel())).sum())


def aligned_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """How well one thumbnail is a crop of the other: the best normalized correlation, 1 for
    the same pixels."""
    return _similarity(_Thumb.of(a), _Thumb.of(b))


def _similarity(a: _Thumb, b: _Thumb) -> float:
    return max(_inside(a, b), _inside(b, a))


def _verify(args: tuple[list[str], list[tuple[int, int]]]) -> list[float]:
    files, pairs = args
    thumbs: dict[int, _Thumb] = {}
    scores = []
    for i, j in pairs:
        for k in (i, j):
            if k not in thumbs:
                thumbs[k] = _Thumb.of(thumbnail(files[k]))
        scores.append(_similarity(thumbs[i], thumbs[j]))
    return scores


def cropped_copy_pairs(
    files: Sequence[str | Path],
    crop_hashes: Sequence[str],
    sizes: Sequence[tuple[int, int]],
    max_hash_distance: int = 12,
    min_similarity: float = 0.985,
    workers: int = 1,
    *,
    digests: Sequence[str] | None = None,
    score_cache: str | Path | None = None,
    joined: Sequence[int] | None = None,
) -> list[tuple[int, int]]:
    """Index pairs ``(i, j)`` of ``files`` that are copies of one image up to a crop of at most
    :data:`MAX_CROP` per side, a rescale and a re-encode. ``crop_hashes`` (:func:`crop_hash`,
    ``""`` for unreadable files) and ``sizes`` (width, height) come from the fingerprints.

    With ``digests`` (each file's sha256) and ``score_cache`` (a JSON file), the similarity of
    each verified pair is kept by content: a later run over the same files verifies nothing.
    With ``joined`` (a group id per file, from the patients or a group file), pairs already in
    one group are not verified: they share a split whatever their pixels.
    """
    slack = (1 - MAX_CROP) ** -1 * 1.01
    candidates = []
    for i, j, _ in near_duplicate_pairs(list(crop_hashes), max_hash_distance):
        (wi, hi), (wj, hj) = sizes[i], sizes[j]
        ratio = (wi / max(hi, 1)) / (wj / max(hj, 1))
        if 1 / slack <= ratio <= slack and (joined is None or joined[i] != joined[j]):
            candidates.append((i, j))
    if not candidates:
        return []
    cache = PairScores(score_cache if digests is not None else None)
    keys = [cache.key(digests[i], digests[j]) for i, j in candidates] if digests else []
    todo = [k for k, _ in enumerate(candidates) if not keys or keys[k] not in cache.scores]
    names = [str(f) for f in files]
    pending = [candidates[k] for k in todo]
    chunks = [pending[k : k + 256] for k in range(0, len(pending), 256)]
    jobs = [(names, chunk) for chunk in chunks]
    if workers > 1 and len(chunks) > 1:
        with ProcessPoolExecutor(workers) as pool:
            found = [s for part in pool.map(_verify, jobs) for s in part]
    else:
        found = [s for job in jobs for s in _verify(job)]
    if keys:
        cache.update({keys[k]: score for k, score in zip(todo, found, strict=True)})
        scores = [cache.scores[key] for key in keys]
    else:
        scores = found
    return [pair for pair, s in zip(candidates, scores, strict=True) if s >= min_similarity]


class PairScores:
    """Verified similarities by the two files' contents, in a JSON file (``None``: kept in
    memory only). Written atomically; a damaged or older file is started afresh."""

    VERSION = 1

    def __init__(self, file: str | Path | None) -> None:
        self.file = Path(file) if file else None
        self.scores: dict[str, float] = {}
        if self.file is not None and self.file.is_file():
            try:
                stored = json.loads(self.file.read_text())
                if stored.get("version") == self.VERSION and stored.get("side") == SIDE:
                    self.scores = {str(k): float(v) for k, v in stored["scores"].items()}
            except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
                self.scores = {}

    @staticmethod
    def key(a: str, b: str) -> str:
        return f"{min(a, b)}:{max(a, b)}"

    def update(self, scores: dict[str, float]) -> None:
        if not scores:
            return
        self.scores.update(scores)
        if self.file is not None:
            payload = {"version": self.VERSION, "side": SIDE, "scores": self.scores}
            write_atomically(self.file, json.dumps(payload))
