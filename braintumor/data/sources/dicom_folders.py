"""The ``dicom`` layout: ``root/<class>/**/*.dcm``, one MR slice per file, split for you.

Each class folder holds DICOM files (any folders of series and studies below it), read by
:mod:`braintumor.data.dicom` (modality LUT, MONOCHROME1, the file's window, else the percentile
rule). A patient's slices stay in one split on their own: the group of each file is the
pseudonym of its ``PatientID`` (else its ``StudyInstanceUID``), a salted hash
(:mod:`braintumor.data.pseudonyms`), as figshare's patient ids are for that set; the id itself
is never kept. A file that is not a single-frame MR slice (another modality, a multi-frame
file, no pixels, not DICOM) is listed and skipped, like a corrupt image.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from braintumor.data.dicom import read_dataset, window_slice
from braintumor.data.pseudonyms import pseudonym, study_salt
from braintumor.data.scan import Scan
from braintumor.data.sources import FoundScans
from braintumor.data.sources.folders import class_folders, class_folders_hold
from braintumor.errors import DataError

ENDINGS = (".dcm", ".dicom")


def is_dicom_slice(name: str) -> bool:
    return not name.startswith(".") and name.lower().endswith(ENDINGS)


def _header(path: Path):
    import pydicom

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
    except (pydicom.errors.InvalidDicomError, OSError, ValueError, EOFError) as error:
        raise DataError(f"not a readable DICOM file ({error})") from None
    modality = str(getattr(ds, "Modality", "") or "")
    if modality != "MR":
        raise DataError(f"not an MR image: its Modality is '{modality or 'missing'}'")
    if int(getattr(ds, "NumberOfFrames", 1) or 1) > 1:
        raise DataError("a multi-frame file: give one slice per file for training (predict "
                        "reads multi-frame series)")  # fmt: skip
    return ds


def scan(root: Path, source: str = "", exclude: Sequence[str] = ()) -> FoundScans:
    """Every ``.dcm`` file under ``root/<class>/`` (sorted by path), its patient's pseudonym as
    its group; files that are not single-frame MR slices skipped with the reason."""
    names = class_folders(root, exclude)
    salt = study_salt()
    found = FoundScans([], classes=names, patients=[])
    for label in names:
        paths = sorted(
            (Path(folder) / name).relative_to(root).as_posix()
            for folder, _, files in os.walk(root / label)
            for name in files
            if is_dicom_slice(name)
        )
        for path in paths:
            try:
                ds = _header(root / path)
            except DataError as error:
                found.skipped.append((Scan(path, label, source), str(error)))
                continue
            who = str(getattr(ds, "PatientID", "") or "") or str(ds.get("StudyInstanceUID", ""))
            found.scans.append(Scan(path, label, source))
            alias = pseudonym(who, salt, "patient").removeprefix("patient-") if who else None
            found.patients.append(alias)  # type: ignore[union-attr]  # the catalog: patient:<alias>
    if not found.scans and not found.skipped:
        raise DataError(f"'{root}' holds no .dcm files under its class folders (root/<class>/).")
    return found


def read_image(path: str | Path) -> np.ndarray:
    """The windowed ``uint8`` slice of one single-frame MR file."""
    return window_slice(read_dataset(Path(path)), Path(path))


def detect(root: Path) -> bool:
    """True when a class folder of ``root`` holds ``.dcm`` files."""
    return class_folders_hold(root, is_dicom_slice)


def install(base: Path, out: Path, writable: bool = False) -> None:
    """Copy the class folders under ``base`` to ``out``."""
    shutil.copytree(base, out, dirs_exist_ok=True)


def describe(out: Path) -> str:
    count = sum(1 for p in out.rglob("*") if p.is_file() and is_dicom_slice(p.name))
    return f"{count} DICOM slices at {out}"
