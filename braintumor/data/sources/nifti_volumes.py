"""The ``nifti`` layout: ``root/<class>/**/*.nii(.gz)``, 3-D volumes, sliced for you.

Each volume is read by :mod:`braintumor.data.nifti` (canonical RAS, axial slices, one window
per volume); its slices without brain are left out by :mod:`braintumor.data.slice_selection`
(the rule ``predict`` applies to a study), and the slices kept are written once, as lossless
PNGs, into ``data.prepared_dir/<hash of root>/<class>/`` (:func:`prepare`). That folder is
reused while the volumes are unchanged (their paths, sizes and times are its manifest) and is
what the catalog scans, splits and serves.

A volume's *case* is its group, so a case's volumes and slices stay in one split: the folder
below the class folder when volumes sit in case folders (``root/<class>/<case>/t1.nii.gz``),
else the file's name less a sequence suffix (``case7_t1ce.nii.gz`` -> ``case7``,
``sub-01_T1w.nii.gz`` -> ``sub-01``). Cases are named by a salted pseudonym
(:mod:`braintumor.data.pseudonyms`) in the slices' file names (``<alias>_v<n>_z<slice>.png``);
the name itself is kept nowhere. A volume that cannot be read (not 3-D, a singular affine, not
NIfTI) is listed and skipped, like a corrupt image.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from braintumor.data.sources import FoundScans
from braintumor.data.sources.folders import class_folders, class_folders_hold
from braintumor.errors import DataError

ENDINGS = (".nii", ".nii.gz")
MANIFEST_NAME = ".nifti_slices.json"
SKIPPED_NAME = "skipped_volumes.json"
FORMAT = 1  # bump when the slicing rule or the file names change: prepared folders redo
_SLICE = re.compile(r"^(?P<alias>[0-9a-f]{16})_v\d+_z\d+\.png$")


def is_volume(name: str) -> bool:
    return not name.startswith(".") and name.lower().endswith(ENDINGS)


def case_of(relative: Path) -> str:
    """The case of a volume at ``relative`` (its path below the class folder), by the rule of
    the module docstring."""
    from braintumor.data.dicom import infer_sequence_of_name

    if len(relative.parts) > 1:
        return relative.parts[0]
    stem = relative.name[: -len(".gz")] if relative.name.lower().endswith(".gz") else relative.name
    stem = stem[: -len(".nii")] if stem.lower().endswith(".nii") else stem
    tokens = re.split(r"[_.]", stem)
    if len(tokens) > 1 and infer_sequence_of_name(tokens[-1]) != "unknown":
        tokens = tokens[:-1]
    return "_".join(tokens)


def _volumes(root: Path, names: Sequence[str]) -> list[tuple[str, Path]]:
    """``(class, path relative to root)`` of every volume under the class folders, sorted."""
    found = []
    for label in names:
        for folder, dirs, files in os.walk(root / label):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            found += [(label, (Path(folder) / n).relative_to(root)) for n in sorted(files)
                      if is_volume(n)]  # fmt: skip
    return sorted(found, key=lambda item: item[1].as_posix())


def _identity(root: Path, label: str, rel: Path) -> list:
    """What the manifest knows of a volume: a change to any redoes the slices."""
    stat = (root / rel).stat()
    return [label, rel.as_posix(), stat.st_size, stat.st_mtime_ns]


def prepared_folder(root: Path, prepared_dir: Path) -> Path:
    """Where the slices of the volumes under ``root`` are written."""
    key = hashlib.sha256(str(Path(root).resolve()).encode()).hexdigest()[:16]
    return Path(prepared_dir) / key


def prepare(root: Path, prepared_dir: Path, exclude: Sequence[str] = ()) -> Path:
    """The folder of the slices of the volumes under ``root`` (written once, see the module
    docstring); a folder of class folders of PNG slices that :func:`scan` reads."""
    from braintumor.data.pseudonyms import pseudonym, study_salt
    from braintumor.data.synthetic import publish_generated

    root = Path(root)
    if not root.is_dir():
        raise DataError(f"'{root}' does not exist or is not a folder of NIfTI class folders.")
    names = class_folders(root, exclude)
    volumes = _volumes(root, names)
    if not volumes:
        raise DataError(f"'{root}' holds no .nii or .nii.gz volume under its class folders "
                        "(root/<class>/*.nii.gz).")  # fmt: skip
    salt = study_salt()
    manifest = {
        "format": FORMAT,
        "salt": hashlib.sha256(salt).hexdigest()[:16],  # another salt: other aliases
        "classes": names,
        "volumes": [_identity(root, label, rel) for label, rel in volumes],
    }

    def write(out: Path) -> None:
        import numpy as np
        from PIL import Image

        from braintumor.data.nifti import read_volume
        from braintumor.data.slice_selection import select_slices

        skipped: list[list[str]] = []
        counts: dict[tuple[str, str], int] = defaultdict(int)
        for label in names:
            (out / label).mkdir(parents=True, exist_ok=True)
        for label, rel in volumes:
            try:
                volume = read_volume(root / rel)
            except (DataError, OSError, ValueError) as error:
                skipped.append([label, (root / rel).as_posix(), str(error)])
                continue
            alias = pseudonym(case_of(rel.relative_to(label)), salt, "case").removeprefix("case-")
            number = counts[(label, alias)]
            counts[(label, alias)] += 1
            chosen = select_slices(volume) if len(volume) > 2 else None
            kept = chosen.kept if chosen is not None else list(range(len(volume)))
            for k in kept:
                Image.fromarray(np.ascontiguousarray(volume[k])).save(
                    out / label / f"{alias}_v{number}_z{k:03d}.png")  # fmt: skip
        (out / SKIPPED_NAME).write_text(json.dumps(skipped, indent=1))
        (out / MANIFEST_NAME).write_text(json.dumps(manifest, indent=1))

    out = prepared_folder(root, prepared_dir)
    foreign = (f"'{out}' holds files but no {MANIFEST_NAME}: it is not a folder of prepared "
               "slices and is not replaced; point data.prepared_dir elsewhere.")  # fmt: skip
    return publish_generated(out, MANIFEST_NAME, manifest, write, foreign,
                             f"the axial slices of {len(volumes)} NIfTI volumes",
                             "NIfTI slices")  # fmt: skip


def scan(root: Path, source: str = "", exclude: Sequence[str] = ()) -> FoundScans:
    """The slices of a prepared folder (sorted by path), each case's alias its group; the
    volumes :func:`prepare` could not read skipped with the reason."""
    from braintumor.data.scan import Scan

    root = Path(root)
    if not (root / MANIFEST_NAME).is_file():
        raise DataError(
            f"'{root}' is not a folder of prepared NIfTI slices: data=nifti slices the volumes "
            "of data.root into data.prepared_dir first (training, evaluate and predict on a run "
            "do); give data.root the volumes' folder."
        )
    names = [n for n in json.loads((root / MANIFEST_NAME).read_text())["classes"]
             if n not in set(exclude)]  # fmt: skip
    found = FoundScans([], classes=names, patients=[])
    for label in names:
        for file in sorted((root / label).glob("*.png")):
            match = _SLICE.match(file.name)
            if match is None:
                continue
            found.scans.append(Scan(f"{label}/{file.name}", label, source))
            found.patients.append(match["alias"])  # type: ignore[union-attr]
    for label, path, reason in json.loads((root / SKIPPED_NAME).read_text()):  # absolute
        found.skipped.append((Scan(path, label, source), f"volume not read: {reason}"))
    if not found.scans:
        raise DataError(f"no slice with brain in the NIfTI volumes sliced into '{root}'"
                        + (f" ({len(found.skipped)} volume(s) unreadable)" if found.skipped
                           else "") + ".")  # fmt: skip
    return found


def detect(root: Path) -> bool:
    """True when a class folder of ``root`` holds NIfTI volumes, or ``root`` is prepared."""
    return (Path(root) / MANIFEST_NAME).is_file() or class_folders_hold(Path(root), is_volume)


def install(base: Path, out: Path, writable: bool = False) -> None:
    """Copy the class folders of volumes under ``base`` to ``out``."""
    shutil.copytree(base, out, dirs_exist_ok=True)


def describe(out: Path) -> str:
    count = sum(1 for p in Path(out).rglob("*") if p.is_file() and is_volume(p.name))
    return f"{count} NIfTI volumes at {out}"
