"""The scans of one source in its layout, before any check: the first stage of a catalog.

Layouts (``data.layout``):

- ``folder``: ``root/<class>/`` (the 44c, 17c and Br35H sets), split for you;
- ``presplit``: ``root/{train,val,test}/<class>/``; the split folders may also be named
  ``Training``/``Validation``/``Testing`` (any case), as in the 4-class Kaggle set;
- ``figshare``: ``N.mat`` slices anywhere under root (Cheng et al.): the label is read from
  each file, its patient id becomes its group (so a patient's slices stay in one split), and
  a file that cannot be read as a slice is listed and skipped like a corrupt image.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from braintumor.data.figshare import LABELS, is_figshare_slice, read_figshare_labels
from braintumor.data.scan import Scan, find_classes
from braintumor.errors import DataError

LAYOUTS = ("folder", "presplit", "figshare")
SPLIT_FOLDER_NAMES = {
    "train": ("train", "training"),
    "val": ("val", "valid", "validation"),
    "test": ("test", "testing"),
}


@dataclass
class FoundScans:
    """What scanning a source finds: its scans, their groups from the files themselves (the
    figshare patient ids; ``None`` elsewhere) and the files it could not read."""

    scans: list[Scan]
    patients: list[str] | None = None
    skipped: list[tuple[Scan, str]] = field(default_factory=list)


def class_folders(root: Path, exclude: Sequence[str] = ()) -> list[str]:
    """The class folders of ``root`` less ``exclude`` (e.g. Br35H's unlabelled ``pred``)."""
    names = [n for n in find_classes(root) if n not in set(exclude)]
    if not names:
        raise DataError(f"'{root}' holds no class folder besides the excluded {list(exclude)}.")
    return names


def find_split_folders(root: Path) -> dict[str, Path]:
    """``{split: folder}`` of a pre-split set (``train``/``Training``, ... in any case)."""
    if not root.is_dir():
        raise DataError(f"data root '{root}' does not exist or is not a folder.")
    entries = {e.name.casefold(): Path(e.path) for e in os.scandir(root) if e.is_dir()}
    found = {}
    for split, names in SPLIT_FOLDER_NAMES.items():
        matches = [entries[n] for n in names if n in entries]
        if len(matches) > 1:
            raise DataError(
                f"'{root}' has several {split} folders ({', '.join(m.name for m in matches)}); "
                "keep one."
            )
        if matches:
            found[split] = matches[0]
    for split in ("train", "test"):
        if split not in found:
            raise DataError(
                f"data.layout=presplit expects '{root / split}' (root/train, root/test and "
                "optionally root/val, each holding the same class folders; Training/Testing "
                "in any case are accepted too)."
            )
    return found


def scan_figshare(root: Path, source: str = "") -> FoundScans:
    """Every ``.mat`` slice under ``root`` (sorted by path) with its label and patient id."""
    if not root.is_dir():
        raise DataError(
            f"data root '{root}' does not exist: expected the figshare slices (N.mat) under it. "
            "Set data.root=/path/to/figshare3 (python -m braintumor download figshare3)."
        )
    paths = sorted(
        (Path(folder) / name).relative_to(root).as_posix()
        for folder, _, names in os.walk(root)
        for name in names
        if is_figshare_slice(name)
    )
    if not paths:
        raise DataError(
            f"'{root}' holds no .mat slices: expected the figshare files 1.mat ... 3064.mat "
            "(unzip the four brainTumorDataPublic_*.zip archives there)."
        )
    found = FoundScans([], [])
    for path in paths:
        try:
            code, pid = read_figshare_labels(root / path)
        except DataError as error:  # listed with its path: the reason need not repeat it
            reason = str(error).replace(f"'{root / path}'", "the file")
            found.skipped.append((Scan(path, "unreadable", source), reason))
            continue
        found.scans.append(Scan(path, LABELS[code], source))
        found.patients.append(pid)  # type: ignore[union-attr]
    return found
