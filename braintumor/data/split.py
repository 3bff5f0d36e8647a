"""Stratified train/val/test splits and their ``split.csv`` record."""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from braintumor.data.scan import DataError, Scan

SPLITS = ("train", "val", "test")


def _check_splittable(labels: Sequence[str], fraction: float, what: str, seed: int) -> None:
    counts = Counter(labels)
    tiny = sorted(label for label, n in counts.items() if n < 2)
    if tiny:
        raise DataError(
            f"cannot carve a stratified {what} split: class(es) {tiny} have fewer than 2 "
            "images left. Add images, merge or drop these classes, or pass a split file "
            "(data.split_file=...)."
        )
    n_holdout = int(np.ceil(fraction * len(labels)))
    if n_holdout < len(counts):
        raise DataError(
            f"a {what} fraction of {fraction} gives {n_holdout} of {len(labels)} images, fewer "
            f"than the {len(counts)} classes, so stratification is impossible. Raise the "
            f"{what} fraction or use a larger dataset."
        )


def stratified_split(
    labels: Sequence[str], val_fraction: float, test_fraction: float, seed: int
) -> list[str]:
    """Assign each item to ``train``, ``val`` or ``test``, stratified by label.

    Fractions are of the whole set; either may be 0. The result depends only on the labels,
    the fractions and ``seed``.
    """
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise DataError(
            f"split fractions must be in [0, 1) and sum below 1; got val={val_fraction}, "
            f"test={test_fraction}."
        )
    labels = list(labels)
    index = np.arange(len(labels))
    assigned = np.array(["train"] * len(labels), dtype=object)
    rest = index
    if test_fraction > 0:
        _check_splittable(labels, test_fraction, "test", seed)
        rest, test = train_test_split(
            index, test_size=test_fraction, stratify=labels, random_state=seed
        )
        assigned[test] = "test"
    if val_fraction > 0:
        rest_labels = [labels[i] for i in rest]
        relative = val_fraction / (1.0 - test_fraction)
        _check_splittable(rest_labels, relative, "val", seed)
        _, val = train_test_split(
            rest, test_size=relative, stratify=rest_labels, random_state=seed + 1
        )
        assigned[val] = "val"
    return assigned.tolist()


def write_split_csv(path: str | Path, scans: Sequence[Scan], splits: Sequence[str]) -> Path:
    """Write ``path,class,split`` rows (paths relative to the data root)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "class", "split"])
        for scan, split in zip(scans, splits, strict=True):
            writer.writerow([scan.path, scan.label, split])
    return path


def read_split_csv(path: str | Path) -> tuple[list[Scan], list[str]]:
    """Read a ``split.csv`` written by :func:`write_split_csv`."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"split file '{path}' does not exist (data.split_file).")
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        missing = {"path", "class", "split"} - set(reader.fieldnames or [])
        if missing:
            raise DataError(
                f"split file '{path}' lacks column(s) {sorted(missing)}; expected the "
                "header 'path,class,split' as written to a run directory's split.csv."
            )
        rows = list(reader)
    bad = sorted({r["split"] for r in rows} - set(SPLITS))
    if bad:
        raise DataError(f"split file '{path}' has unknown split name(s) {bad}; use {SPLITS}.")
    return [Scan(r["path"], r["class"]) for r in rows], [r["split"] for r in rows]
