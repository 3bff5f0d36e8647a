"""The readers of the data layouts (``data.layout``), each declared once in :data:`LAYOUTS`.

- ``folder`` (:mod:`.folders`): ``root/<class>/`` (the 44c, 17c and Br35H sets), split for you;
- ``presplit`` (:mod:`.presplit`): ``root/{train,val,test}/<class>/``; the split folders may
  also be named ``Training``/``Validation``/``Testing`` (any case), as in the 4-class Kaggle set;
- ``figshare`` (:mod:`.figshare`): ``N.mat`` slices anywhere under root (Cheng et al.): the
  label is read from each file, its patient id becomes its group (so a patient's slices stay in
  one split), and a file that cannot be read as a slice is listed and skipped like a corrupt
  image.
- ``dicom`` (:mod:`.dicom_folders`): ``root/<class>/**/*.dcm``, one MR slice per file, its
  patient's pseudonym its group;
- ``nifti`` (:mod:`.nifti_volumes`): ``root/<class>/**/*.nii.gz`` volumes, whose slices with
  brain are written once into ``data.prepared_dir`` (the layout's ``prepare``) and read from
  there, each volume's case its group.

Every use of a layout reads its :class:`Layout` here: the catalog and merged sets scan with
:func:`scan_source`, ``download`` installs with the reader's ``install``, the audit detects
layouts with :func:`detect_layout`, the image decoder and the mask reader find the reader by
file ending, and the config check (before torch, numpy or this package's readers are
imported) names each layout's shape. This module imports the standard library only.

A new layout (DICOM, NIfTI, ...) is three files and its YAMLs:

1. ``data/sources/<layout>.py``, the reader, with the functions a reader has:
   ``scan(root, source, exclude) -> FoundScans``, ``install(base, out, writable) -> None``,
   ``detect(root) -> bool``, ``describe(out) -> str`` and, when its files are not images PIL
   decodes, ``read_image(path) -> uint8 array`` (and ``read_mask(path)`` for tumour masks);
   a layout whose files must be turned into slices first (volumes) also has
   ``prepare(root, prepared_dir, exclude) -> Path`` (the folder ``scan`` then reads);
2. its :class:`Layout` line in :data:`LAYOUTS` below;
3. a test in ``tests/data/``;

plus ``conf/data/<set>.yaml`` (and a :data:`~braintumor.data.public_sets.PUBLIC_SETS` entry
when it is a public set that ``download`` fetches).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from braintumor.errors import DataError

if TYPE_CHECKING:
    from braintumor.data.scan import Scan


@dataclass(frozen=True)
class Layout:
    """One layout: its name, what ``data.root`` holds (for messages), its reader module, the
    file endings its reader decodes itself (instead of PIL), and whether its folders give the
    split (no cross-validation then)."""

    name: str
    shape: str  # what data.root holds, e.g. "root/<class>/*.jpeg"
    reader: str  # the module of its scan / install / detect / describe functions
    file_endings: tuple[str, ...] = ()  # scans read by reader.read_image (and read_mask)
    gives_splits: bool = False  # scan() returns FoundScans.splits
    prepared: bool = False  # prepare(root, prepared_dir, exclude) first; scan() reads its output

    def module(self) -> ModuleType:
        """The reader module (imported on first use: it may import numpy, PIL, h5py)."""
        return importlib.import_module(self.reader)


LAYOUTS: dict[str, Layout] = {
    layout.name: layout
    for layout in (  # detect_layout tries them in this order; folder is the fallback
        Layout(
            "presplit",
            "root/{train,val,test}/<class>/*.jpeg",
            f"{__name__}.presplit",
            gives_splits=True,
        ),
        Layout("figshare", "root/**/N.mat (figshare slices)", f"{__name__}.figshare", (".mat",)),
        Layout(
            "dicom",
            "root/<class>/**/*.dcm (one MR slice per file)",
            f"{__name__}.dicom_folders",
            (".dcm", ".dicom"),
        ),
        Layout(
            "nifti",
            "root/<class>/**/*.nii.gz (3-D volumes, sliced axially)",
            f"{__name__}.nifti_volumes",
            prepared=True,
        ),
        Layout("folder", "root/<class>/*.jpeg", f"{__name__}.folders"),
    )
}


@dataclass
class FoundScans:
    """What scanning a source finds: its scans (paths relative to its root), the class names,
    the groups the files give (figshare's patient ids), the splits its folders give
    (``presplit``) and the files it could not read; ``None`` where a layout gives none."""

    scans: list[Scan]
    classes: list[str] | None = None  # None: the labels of the readable scans
    patients: list[str] | None = None
    splits: list[str] | None = None
    skipped: list[tuple[Scan, str]] = field(default_factory=list)

    def keep(self, paths: set[str]) -> FoundScans:
        """The scans whose path is in ``paths`` (with their patients and splits)."""
        kept = [i for i, s in enumerate(self.scans) if s.path in paths]

        def pick(values: list | None) -> list | None:
            return [values[i] for i in kept] if values is not None else None

        scans = [self.scans[i] for i in kept]
        return FoundScans(scans, self.classes, pick(self.patients), pick(self.splits), self.skipped)


def layout_of(name: str) -> Layout:
    """The :class:`Layout` named ``name`` (``ValueError`` naming the known ones)."""
    if name not in LAYOUTS:
        raise ValueError(f"data.layout must be one of {tuple(LAYOUTS)}, got {name!r}.")
    return LAYOUTS[name]


def scan_source(
    root: Path, layout: str, source: str = "", exclude: tuple[str, ...] = ()
) -> FoundScans:
    """The scans of ``root`` in ``layout`` (``exclude``: folders that are not classes), before
    any decoding check: one scan for a catalog, a merged set's sources and the audit."""
    return layout_of(layout).module().scan(Path(root), source, tuple(exclude))


def detect_layout(root: Path) -> str:
    """The first layout of :data:`LAYOUTS` whose reader recognises ``root`` (``folder`` when
    none does)."""
    if not Path(root).is_dir():
        raise DataError(f"'{root}' does not exist or is not a folder.")
    for layout in LAYOUTS.values():
        if layout.name != "folder" and layout.module().detect(root):
            return layout.name
    return "folder"


def reader_for(path: str | Path) -> ModuleType | None:
    """The reader that decodes ``path`` itself (by its file ending), or ``None`` for PIL."""
    ending = Path(path).suffix.lower()
    for layout in LAYOUTS.values():
        if ending in layout.file_endings:
            return layout.module()
    return None
