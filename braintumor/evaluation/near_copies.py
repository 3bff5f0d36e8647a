"""Near-copies of a model's training images in an external set, found before it is scored.

Public sets copy each other (the 4-class Kaggle set holds the figshare slices); an external
image that is a copy of an image the model was fitted on (``train``) or selected and
calibrated on (``val``) does not test it. Such images are found by the same fingerprints the
splits use (:mod:`braintumor.data.fingerprint`: identical bytes, perceptual hashes at most
``data.near_duplicate_distance`` bits apart, or, with ``data.group_cropped_copies``, copies
cropped by a few percent and rescaled), removed from the scoring, counted and listed.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from braintumor.atomic import write_atomically
from braintumor.data.cropped_copies import cropped_copy_pairs
from braintumor.data.duplicates import near_duplicate_pairs
from braintumor.data.fingerprint import Fingerprint, fingerprint_scans
from braintumor.errors import DataError
from braintumor.runs.layout import RunDir

SEEN_SPLITS = ("train", "val")
"""The splits of the model's run whose images it has seen (fitted, early-stopped, calibrated)."""


@dataclass(frozen=True)
class TrainingImages:
    """The images a model has seen: under ``root``, relative ``paths`` with their ``splits``."""

    root: Path
    paths: Sequence[str]
    splits: Sequence[str]


@dataclass(frozen=True)
class NearCopy:
    """An external image and the closest training image it copies."""

    path: str
    training_path: str
    training_split: str
    distance: int  # perceptual-hash bits apart (0 also for identical bytes; -1: a cropped copy)


def training_images(run: RunDir | None) -> TrainingImages:
    """The images of ``run``'s ``train``/``val`` splits (its ``split.csv``), under the data root
    its ``environment.json`` records (a merged set's: the common folder of its sources' roots).
    ``run`` is ``None`` for a checkpoint outside a run folder."""
    if run is None:
        raise DataError(
            "the checkpoint lies outside a run folder (<run>/checkpoints/x.ckpt), so the images "
            "it was trained on are unknown and near-copies of them cannot be removed. Score it "
            "from its run folder, or set eval.remove_near_copies=false to score without that "
            "check."
        )
    if not run.split_csv.is_file() or not run.environment.is_file():
        raise DataError(
            f"the model's run folder '{run.root}' lacks split.csv or environment.json, so its "
            "training images are unknown and near-copies of them cannot be removed. Score a "
            "checkpoint inside its run folder (<run>/checkpoints/), or set "
            "eval.external.remove_near_copies=false to score without that check."
        )
    data = (json.loads(run.environment.read_text()).get("config") or {}).get("data") or {}
    if data.get("sources"):  # a merged set: paths start at the sources' common folder
        roots = [
            Path(str((data.get("roots") or {}).get(s, ""))).absolute() for s in data["sources"]
        ]
        root = Path(os.path.commonpath([str(r) for r in roots]))
    else:
        root = Path(str(data.get("root", "")))
    with run.split_csv.open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("split") in SEEN_SPLITS]
    if not root.is_dir():
        raise DataError(
            f"the training images of run '{run.root}' were under '{root}' (its "
            "environment.json), which is not here, so near-copies of them cannot be found. "
            "Make that folder available, or set eval.external.remove_near_copies=false."
        )
    return TrainingImages(root, [r["path"] for r in rows], [r["split"] for r in rows])


def fingerprints(
    root: Path, paths: Sequence[str], hash_size: int, cache_dir: Path | None, workers: int = 1
) -> dict[str, Fingerprint]:
    """The fingerprints of ``root/path``, from (and into) the same cache file the catalog of
    that root uses (``<cache_dir>/<sha1 of the root>.json``)."""
    cache = None
    if cache_dir is not None:
        cache = (
            Path(cache_dir) / f"{hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:16]}.json"
        )
    return fingerprint_scans(root, paths, hash_size, cache, workers=workers,
                             progress=len(paths) > 500)  # fmt: skip


def find_near_copies(
    external: Mapping[str, Fingerprint],
    training: Mapping[str, Fingerprint],
    training_split: Mapping[str, str],
    max_distance: int,
    roots: tuple[Path, Path] | None = None,
    cropped_similarity: float | None = 0.985,
    workers: int = 1,
) -> list[NearCopy]:
    """Each external image (path -> fingerprint) that has a training image with the same
    bytes or a perceptual hash at most ``max_distance`` bits away, with its closest one.

    With ``roots`` (the external and the training root) and ``cropped_similarity``, copies
    cropped by up to 3% of a side and rescaled are found too, as the splits find them
    (:func:`~braintumor.data.cropped_copies.cropped_copy_pairs`: coarse hashes of the centre,
    verified by the pixel correlation after alignment); their ``distance`` is -1.
    """
    ext_paths, train_paths = list(external), list(training)
    by_digest = {fp.sha256: p for p, fp in training.items() if fp.sha256}
    best: dict[str, tuple[int, str]] = {}
    for path, fp in external.items():
        if fp.sha256 in by_digest:
            best[path] = (0, by_digest[fp.sha256])
    prints = [external[p] for p in ext_paths] + [training[p] for p in train_paths]
    n = len(ext_paths)
    for i, j, distance in near_duplicate_pairs([p.phash for p in prints], max_distance):
        if i < n <= j:  # one external, one training image (i < j always)
            path, match = ext_paths[i], train_paths[j - n]
            if path not in best or (distance, match) < best[path]:
                best[path] = (distance, match)
    if roots is not None and cropped_similarity is not None:
        files = [roots[0] / p for p in ext_paths] + [roots[1] / p for p in train_paths]
        for i, j in cropped_copy_pairs(files, [p.crop_hash for p in prints],
                                       [(p.width, p.height) for p in prints], max_distance,
                                       cropped_similarity, workers):  # fmt: skip
            if i < n <= j and ext_paths[i] not in best:
                best[ext_paths[i]] = (-1, train_paths[j - n])
    return [
        NearCopy(path, match, training_split[match], distance)
        for path, (distance, match) in sorted(best.items())
    ]


def write_near_copies_csv(path: Path, copies: Sequence[NearCopy], training_root: Path) -> Path:
    """``near_copies.csv``: the removed images, each with the training image it copies."""
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["path", "training_path", "training_split", "distance"])
    for c in copies:
        writer.writerow([c.path, str(training_root / c.training_path), c.training_split,
                         c.distance])  # fmt: skip
    return write_atomically(path, text.getvalue())
