"""Stratified train/val/test splits and their ``split.csv`` record."""

from __future__ import annotations

import csv
import warnings
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold, train_test_split

from braintumor.data.scan import Scan
from braintumor.errors import DataError

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


def _fold(
    index: np.ndarray, labels: Sequence[str], groups: Sequence[int], fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split ``index`` into (rest, held-out ~fraction) with whole groups, stratified."""
    n_groups = len({groups[i] for i in index})
    n_folds = int(min(max(2, round(1.0 / fraction)), n_groups))
    if n_folds < 2:
        return index, index[:0]
    splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    y = [labels[i] for i in index]
    g = [groups[i] for i in index]
    with warnings.catch_warnings():  # tiny classes are reported by the caller
        warnings.simplefilter("ignore", UserWarning)
        rest, held = next(splitter.split(np.zeros(len(index)), y, g))
    return index[rest], index[held]


def group_stratified_split(
    labels: Sequence[str],
    groups: Sequence[int],
    val_fraction: float,
    test_fraction: float,
    seed: int,
) -> list[str]:
    """Like :func:`stratified_split`, but every group lands in one split.

    Groups (near-duplicates, one patient's slices) are kept whole with scikit-learn's
    ``StratifiedGroupKFold`` (one fold of about ``test_fraction`` for test, then one of about
    ``val_fraction`` of the whole for val). Afterwards, a class with at least three groups that
    is missing from val or test gets one of its groups moved there from train, so small
    classes appear in every split when they can. Classes with fewer than three groups cannot,
    and a warning names them.
    """
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise DataError(
            f"split fractions must be in [0, 1) and sum below 1; got val={val_fraction}, "
            f"test={test_fraction}."
        )
    labels, groups = list(labels), list(groups)
    index = np.arange(len(labels))
    assigned = np.array(["train"] * len(labels), dtype=object)
    rest = index
    if test_fraction > 0:
        rest, test = _fold(index, labels, groups, test_fraction, seed)
        assigned[test] = "test"
    if val_fraction > 0 and len(rest):
        _, val = _fold(rest, labels, groups, val_fraction / (1.0 - test_fraction), seed + 1)
        assigned[val] = "val"
    _ensure_every_split(labels, groups, assigned, val_fraction > 0, test_fraction > 0)
    return assigned.tolist()


def _ensure_every_split(
    labels: list[str], groups: list[int], assigned: np.ndarray, want_val: bool, want_test: bool
) -> None:
    members: dict[int, list[int]] = defaultdict(list)
    for i, g in enumerate(groups):
        members[g].append(i)
    class_groups: dict[str, set[int]] = defaultdict(set)
    for i, label in enumerate(labels):
        class_groups[label].add(groups[i])
    wanted = [s for s, on in (("test", want_test), ("val", want_val)) if on]
    short = []
    for label in sorted(class_groups, key=lambda c: len(class_groups[c])):
        if len(class_groups[label]) < 1 + len(wanted):
            short.append(f"{label} ({len(class_groups[label])})")
            continue
        for split in wanted:
            if any(assigned[i] == split and labels[i] == label for i in range(len(labels))):
                continue
            in_train = [
                g for g in class_groups[label] if all(assigned[i] == "train" for i in members[g])
            ]
            train_count = sum(
                1 for g in class_groups[label] if any(assigned[i] == "train" for i in members[g])
            )
            if not in_train or train_count < 2:
                continue  # never take a class's last training group
            smallest = min(in_train, key=lambda g: (len(members[g]), g))
            assigned[members[smallest]] = split
    if short:
        warnings.warn(
            "class(es) with too few independent images (groups) to appear in every split: "
            + ", ".join(short)
            + ". Their val/test metrics are missing or rest on one image; add images or "
            "merge these classes.",
            stacklevel=3,
        )


def assign_splits(
    labels: Sequence[str],
    groups: Sequence[int] | None,
    val_fraction: float,
    test_fraction: float,
    seed: int,
) -> list[str]:
    """``train``/``val``/``test`` per item, stratified by label, keeping ``groups`` whole.

    Without groups to keep together (none, or every item its own) and with at least three
    items per class, the exact (and much faster) :func:`stratified_split`; otherwise
    :func:`group_stratified_split`, which also places classes too small to stratify.
    """
    singletons = groups is None or len(set(groups)) == len(groups)
    if singletons and min(Counter(labels).values(), default=0) >= 3:
        return stratified_split(labels, val_fraction, test_fraction, seed)
    if groups is None:
        groups = list(range(len(labels)))
    return group_stratified_split(labels, groups, val_fraction, test_fraction, seed)


def kfold_splits(
    labels: Sequence[str],
    groups: Sequence[int] | None,
    n_folds: int,
    fold: int,
    val_fraction: float,
    seed: int,
) -> list[str]:
    """Fold ``fold`` of ``n_folds`` as the test set, validation carved from the other folds.

    The folds are scikit-learn's ``StratifiedGroupKFold`` (shuffled with ``seed``): they
    partition the items, keep every group in one fold and depend only on the labels, the
    groups, ``n_folds`` and ``seed``, so the same seed gives the same folds for every ``fold``.
    Validation takes about ``val_fraction`` of the whole set from the remaining folds, whole
    groups, stratified.
    """
    if n_folds < 2 or not 0 <= fold < n_folds:
        raise DataError(
            f"data.n_folds must be at least 2 and data.fold in [0, n_folds); got "
            f"n_folds={n_folds}, fold={fold}."
        )
    labels = list(labels)
    groups = list(groups) if groups is not None else list(range(len(labels)))
    if len(set(groups)) < n_folds:
        raise DataError(
            f"{len(set(groups))} independent images (groups) cannot fill {n_folds} folds; "
            "lower data.n_folds."
        )
    splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():  # tiny classes are reported below
        warnings.simplefilter("ignore", UserWarning)
        folds = list(splitter.split(np.zeros(len(labels)), labels, groups))
    index = np.arange(len(labels))
    assigned = np.array(["train"] * len(labels), dtype=object)
    assigned[folds[fold][1]] = "test"
    rest = index[assigned == "train"]
    if val_fraction > 0 and len(rest):
        relative = min(0.5, val_fraction / (1.0 - 1.0 / n_folds))
        _, val = _fold(rest, labels, groups, relative, seed + 1)
        assigned[val] = "val"
        _ensure_every_split(labels, groups, assigned, want_val=True, want_test=False)
    return assigned.tolist()


def write_split_csv(
    path: str | Path,
    scans: Sequence[Scan],
    splits: Sequence[str],
    groups: Sequence[str] | None = None,
) -> Path:
    """Write ``path,class,split[,group][,source]`` rows (paths relative to the data root;
    ``group`` the ids of :func:`~braintumor.data.groups.group_ids`; ``source`` when scans
    come from named sources)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sources = any(scan.source for scan in scans)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(
            ["path", "class", "split"]
            + (["group"] if groups is not None else [])
            + (["source"] if sources else [])
        )
        for i, (scan, split) in enumerate(zip(scans, splits, strict=True)):
            extra = [groups[i]] if groups is not None else []
            writer.writerow(
                [scan.path, scan.label, split, *extra, *([scan.source] if sources else [])]
            )
    return path


def read_split_csv(path: str | Path) -> tuple[list[Scan], list[str], list[str] | None]:
    """Read a ``split.csv`` written by :func:`write_split_csv`: scans, splits, groups."""
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
    groups = [r["group"] for r in rows] if "group" in (reader.fieldnames or []) else None
    scans = [Scan(r["path"], r["class"], r.get("source") or "") for r in rows]
    return scans, [r["split"] for r in rows], groups
