"""The ``folder`` layout: ``root/<class>/*.jpeg`` (an ImageFolder tree), split for you."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

from braintumor.data.scan import find_classes, is_scan_file, scan_class_folders
from braintumor.data.sources import FoundScans
from braintumor.errors import DataError


def class_folders(root: Path, exclude: Sequence[str] = ()) -> list[str]:
    """The class folders of ``root`` less ``exclude`` (e.g. Br35H's unlabelled ``pred``)."""
    names = [n for n in find_classes(root) if n not in set(exclude)]
    if not names:
        raise DataError(f"'{root}' holds no class folder besides the excluded {list(exclude)}.")
    return names


def class_folders_hold(root: Path, wanted: Callable[[str], bool]) -> bool:
    """Whether any file below a class folder of ``root`` (hidden folders are never classes,
    as in :func:`~braintumor.data.scan.find_classes`) has a name ``wanted`` accepts: a
    layout's ``detect``."""
    for entry in os.scandir(root):
        if entry.is_dir() and not entry.name.startswith("."):
            for _, _, files in os.walk(entry.path):
                if any(wanted(n) for n in files):
                    return True
    return False


def scan(root: Path, source: str = "", exclude: Sequence[str] = ()) -> FoundScans:
    """Every scan under ``root/<class>/`` (sorted by path), its class the folder's name."""
    names = class_folders(root, exclude)
    return FoundScans(scan_class_folders(root, names), classes=names)


def detect(root: Path) -> bool:
    """Any folder is read as class folders (the fallback layout)."""
    return root.is_dir()


def find_class_root(base: Path) -> Path:
    """The folder under ``base`` (itself included, 4 levels deep) with the most subfolders
    that directly hold images: archives often wrap the class folders in one more folder."""
    best, best_count = None, 0
    for dirpath, dirnames, _ in os.walk(base):
        depth = len(Path(dirpath).relative_to(base).parts)
        if depth > 4:
            dirnames[:] = []
            continue
        count = sum(
            1 for d in dirnames if any(is_scan_file(f) for f in os.listdir(Path(dirpath) / d)[:50])
        )
        if count > best_count:
            best, best_count = Path(dirpath), count
    if best is None:
        raise DataError(f"no class folders with images found under '{base}'.")
    return best


def install(base: Path, out: Path, writable: bool = False) -> None:
    """Copy the class folders found under ``base`` (an unpacked download) to ``out``."""
    shutil.copytree(find_class_root(base), out, dirs_exist_ok=True)


def describe(out: Path) -> str:
    """What an installed copy holds, in one line."""
    n_images = sum(1 for p in out.rglob("*") if p.is_file() and is_scan_file(p.name))
    return f"{n_images} images in {len(find_classes(out))} folders at {out}"
