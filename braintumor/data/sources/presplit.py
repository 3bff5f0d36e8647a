"""The ``presplit`` layout: ``root/{train,val,test}/<class>/*.jpeg``, the split given by the
folders. They may also be named ``Training``/``Validation``/``Testing`` (any case), as in the
4-class Kaggle set; ``val`` may be absent (the catalog then carves it out of train)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from braintumor.data.scan import Scan, scan_class_folders
from braintumor.data.sources import FoundScans
from braintumor.data.sources.folders import class_folders
from braintumor.data.sources.folders import describe as describe
from braintumor.errors import DataError

SPLIT_FOLDER_NAMES = {
    "train": ("train", "training"),
    "val": ("val", "valid", "validation"),
    "test": ("test", "testing"),
}


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


def scan(root: Path, source: str = "", exclude: Sequence[str] = ()) -> FoundScans:
    """Every scan of each split folder (train, val, test; each sorted by path), its split the
    folder's; every split must hold the same class folders."""
    folders = find_split_folders(root)
    classes = {split: class_folders(folder, exclude) for split, folder in folders.items()}
    names = classes["train"]
    problems = []
    for split in list(folders)[1:]:
        extra = sorted(set(classes[split]) - set(names))
        lacking = sorted(set(names) - set(classes[split]))
        if extra:
            problems.append(f"{split}/ has class(es) not in train/: {extra}")
        if lacking:
            problems.append(f"{split}/ lacks class(es) of train/: {lacking}")
    if problems:
        raise DataError(
            f"class folders differ between the splits of '{root}': "
            + "; ".join(problems)
            + ". Every split must hold the same class folders."
        )
    found = FoundScans([], classes=names, splits=[])
    for split, folder in folders.items():
        scans = scan_class_folders(folder, names, tree=root)
        found.scans += [Scan(f"{folder.name}/{s.path}", s.label) for s in scans]
        found.splits += [split] * len(scans)  # type: ignore[operator]
    return found


def detect(root: Path) -> bool:
    """True when ``root`` holds a train and a test folder (any spelling)."""
    folders = {e.name.casefold() for e in os.scandir(root) if e.is_dir()}
    return any(n in folders for n in SPLIT_FOLDER_NAMES["train"]) and any(
        n in folders for n in SPLIT_FOLDER_NAMES["test"]
    )


def find_presplit_root(base: Path) -> Path:
    """The folder under ``base`` (4 levels deep) that holds train and test folders."""
    for dirpath, dirnames, _ in os.walk(base):
        if len(Path(dirpath).relative_to(base).parts) > 4:
            dirnames[:] = []
            continue
        names = {d.casefold() for d in dirnames}
        if names & set(SPLIT_FOLDER_NAMES["train"]) and names & set(SPLIT_FOLDER_NAMES["test"]):
            return Path(dirpath)
    raise DataError(f"no train/test (Training/Testing) folders found under '{base}'.")


def install(base: Path, out: Path, writable: bool = False) -> None:
    """Copy the folder holding train and test found under ``base`` to ``out``."""
    shutil.copytree(find_presplit_root(base), out, dirs_exist_ok=True)
