"""Find scans (image files) in class folders and check that each one can be decoded."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from braintumor.data.image import open_scan
from braintumor.errors import DataError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".pgm")
"""File name endings read as scans (case-insensitive); anything else is ignored as junk."""


@dataclass(frozen=True)
class Scan:
    """One image file: its path relative to the data root, its class (folder) name in its
    source, and the source (public set) it comes from ("" for a plain folder of classes)."""

    path: str
    label: str
    source: str = ""

    @property
    def source_label(self) -> str:
        """The label as the source names it (a merged catalog's labels read
        ``<source>/<label>``, since two sets may use one name for different classes)."""
        prefix = f"{self.source}/"
        return self.label[len(prefix) :] if self.label.startswith(prefix) else self.label


def is_scan_file(name: str) -> bool:
    """True for image files; hidden files (``.DS_Store``, ``._x.jpg``) and others are junk."""
    return not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)


def find_classes(root: str | Path) -> list[str]:
    """Sorted names of the class folders directly under ``root``.

    Raises :class:`DataError` when ``root`` does not exist, is not a folder, or holds no
    class folder. Hidden folders and ``__MACOSX`` are ignored.
    """
    root = Path(root)
    if not root.exists():
        raise DataError(
            f"data root '{root}' does not exist: expected a folder with one subfolder per "
            "class (root/<class>/*.jpeg). Set data.root=/path/to/data."
        )
    if not root.is_dir():
        raise DataError(f"data root '{root}' is a file, expected a folder of class folders.")
    classes = sorted(
        entry.name
        for entry in os.scandir(root)
        if entry.is_dir() and not entry.name.startswith(".") and entry.name != "__MACOSX"
    )
    if not classes:
        raise DataError(
            f"data root '{root}' holds no class folders: expected root/<class>/*.jpeg "
            f"(one subfolder per class, image files inside)."
        )
    return classes


def walk_class_folder(
    root: Path, label: str, links: list[str], tree: Path | None = None
) -> Iterator[tuple[Path, list[str]]]:
    """``(folder relative to root, sorted file names)`` for every folder under ``root/label``.

    Folder links are followed when they lead outside ``tree`` (default ``root``). A link back
    into it (its own class folder, a sibling class, the root) or to a folder above it would
    count images twice or under another class's label: it is not followed and is described
    in ``links``. A linked folder reached twice is walked once. Hidden folders are skipped.
    """
    real_tree = os.path.realpath(tree or root)
    seen = {os.path.realpath(root / label)}
    for dirpath, dirnames, filenames in os.walk(root / label, followlinks=True):
        kept = []
        for name in sorted(d for d in dirnames if not d.startswith(".")):
            full = os.path.join(dirpath, name)
            if os.path.islink(full):
                target = os.path.realpath(full)
                common = os.path.commonpath([target, real_tree])
                if common in (real_tree, target) or target in seen:  # inside, above, or again
                    links.append(f"{Path(full).relative_to(root)} -> {target}")
                    continue
                seen.add(target)
            kept.append(name)
        dirnames[:] = kept
        yield Path(dirpath).relative_to(root), sorted(filenames)


def warn_about_links(root: Path, links: list[str]) -> None:
    """Warn, counting and naming them, about folder links :func:`walk_class_folder` skipped."""
    if not links:
        return
    shown = "\n".join(f"  {link}" for link in links[:10])
    more = f"\n  ... and {len(links) - 10} more" if len(links) > 10 else ""
    warnings.warn(
        f"not following {len(links)} folder link(s) that lead back into (or above) the data "
        f"root '{root}', a loop that would count images twice or under another class:\n"
        f"{shown}{more}\nRemove the links, or point them at folders outside the root.",
        stacklevel=3,
    )


def scan_class_folders(
    root: str | Path, classes: Sequence[str] | None = None, tree: str | Path | None = None
) -> list[Scan]:
    """All scans under ``root/<class>/`` (subfolders included), sorted by path.

    Folder links are followed when they lead outside the data root; a link back into it or
    above it (a loop) is skipped with a warning that counts them; ``tree`` (default ``root``)
    is the folder no link may lead into (a pre-split set's root, so train/ cannot link to
    test/). Raises :class:`DataError` naming every class folder that holds no image file.
    """
    root = Path(root)
    classes = list(classes) if classes is not None else find_classes(root)
    scans: list[Scan] = []
    empty: list[str] = []
    links: list[str] = []
    for label in classes:
        tree_root = Path(tree) if tree else root
        found = [
            Scan((folder / name).as_posix(), label)
            for folder, names in walk_class_folder(root, label, links, tree_root)
            for name in names
            if is_scan_file(name)
        ]
        if not found:
            empty.append(str(root / label))
        scans += sorted(found, key=lambda s: s.path)
    warn_about_links(root, links)
    if empty:
        raise DataError(
            f"{len(empty)} class folder(s) hold no image files ({', '.join(IMAGE_EXTENSIONS)}): "
            + "; ".join(f"'{p}'" for p in empty)
            + ". Add images or remove the folder(s)."
        )
    return scans


def check_readable(path: str | Path) -> str | None:
    """``None`` when the image decodes completely, else the reason it does not.

    JPEGs are decoded at reduced scale (``draft``), which still reads every byte and so
    catches truncated files, at a fraction of the cost of a full decode.
    """
    try:
        with open_scan(path) as image:
            image.draft(image.mode if image.mode in ("L", "RGB") else None, (64, 64))
            image.load()
    except Exception as error:  # PIL raises many types for bad files
        return f"{type(error).__name__}: {error}"
    return None


def find_unreadable(root: str | Path, scans: Iterable[Scan]) -> list[tuple[Scan, str]]:
    """The scans that cannot be decoded, each with the reason."""
    root = Path(root)
    bad = []
    for scan in scans:
        reason = check_readable(root / scan.path)
        if reason is not None:
            bad.append((scan, reason))
    return bad
