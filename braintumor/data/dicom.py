"""DICOM MR studies as 8-bit slices: single files, series folders and whole studies.

Files are grouped by ``SeriesInstanceUID`` and ordered along the slice normal (the
``ImagePositionPatient`` projected on the normal of ``ImageOrientationPatient``), else by
``InstanceNumber``. Pixels go through the modality LUT (``RescaleSlope``/``RescaleIntercept``),
``MONOCHROME1`` is inverted, and the window is the file's ``WindowCenter``/``WindowWidth`` when
it has one, else the figshare reader's percentile rule (minimum .. 99.5th percentile ->
0..255, :func:`~braintumor.data.sources.figshare.window_to_uint8`). Multi-frame files give one
slice per frame. Only MR is read: another ``Modality`` is refused, naming it. A compressed
transfer syntax is decoded when pydicom has a decoder for it (its own for RLE and deflate;
``pylibjpeg`` or ``gdcm`` for JPEG and JPEG 2000), else refused in one line naming it.

The sequence of a series (T1, T1C+, T2, FLAIR, unknown) is inferred by :func:`infer_sequence`
from ``SeriesDescription`` and ``ProtocolName`` and the contrast tags; ``overrides`` (a
pattern of the description -> sequence) replace the rule where sites name series their own
way. Identifying tags (names, ids, dates, institution) are never read into what this module
returns: a study is named by its ``StudyInstanceUID`` only, which callers hash.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from braintumor.data.sources.figshare import window_to_uint8
from braintumor.errors import DataError

SEQUENCES = ("T1", "T1C+", "T2", "FLAIR", "unknown")

# The rule of infer_sequence, first match wins, on "<SeriesDescription> <ProtocolName>".
SEQUENCE_RULE: tuple[tuple[str, str], ...] = (
    (r"flair|\btirm\b|dark.?fluid", "FLAIR"),
    (r"t1.*(\+ ?c|post|gad|\bgd\b|contrast|\bce\b|c\+)|(\+ ?c|post|gad|\bgd\b|c\+).*t1", "T1C+"),
    (r"\bt2|t2w|t2_|_t2", "T2"),
    (r"\bt1|t1w|t1_|_t1|mprage|spgr|\bflash\b", "T1"),
)
CONTRAST_TAGS = ("ContrastBolusAgent", "ContrastBolusRoute", "ContrastBolusVolume")


@dataclass
class Series:
    """One series: its slices in order (``uint8``, ``(H, W)``), what it is and where from."""

    uid: str
    study_uid: str
    description: str
    sequence: str
    slices: list[np.ndarray] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)  # one per slice (a multi-frame file repeats)


def _pydicom():
    import pydicom

    return pydicom


def infer_sequence(ds, overrides: Mapping[str, str] | None = None) -> str:
    """The sequence of a dataset's series by the rule of the module docstring (``overrides``
    first: ``{regex of the description: sequence}``)."""
    text = f"{getattr(ds, 'SeriesDescription', '')} {getattr(ds, 'ProtocolName', '')}"
    contrast = any(getattr(ds, t, None) for t in CONTRAST_TAGS)
    return infer_sequence_of_name(text, overrides, contrast)


def infer_sequence_of_name(
    text: str, overrides: Mapping[str, str] | None = None, contrast: bool = False
) -> str:
    """The sequence a series description (or a file name, ``case_t1ce``) names, by the rule;
    ``contrast``: a contrast agent was given (a T1 is then a T1C+)."""
    text = text.lower().replace("t1ce", "t1 ce").replace("t1gd", "t1 gd")
    for pattern, sequence in (overrides or {}).items():
        if re.search(pattern, text, re.IGNORECASE):
            if sequence not in SEQUENCES:
                raise DataError(f"sequence override '{pattern}' -> '{sequence}': not one of "
                                f"{SEQUENCES}.")  # fmt: skip
            return sequence
    for pattern, sequence in SEQUENCE_RULE:
        if re.search(pattern, text):
            if sequence == "T1" and contrast:
                return "T1C+"  # a T1 acquired with a contrast agent
            return sequence
    return "unknown"


def read_dataset(path: Path):
    """One DICOM file (header and pixels), or DataError saying why not."""
    pydicom = _pydicom()
    try:
        ds = pydicom.dcmread(path)
    except (pydicom.errors.InvalidDicomError, OSError, ValueError, EOFError) as error:
        raise DataError(f"'{path}' is not a readable DICOM file ({error}).") from None
    modality = str(getattr(ds, "Modality", "") or "")
    if modality != "MR":
        raise DataError(
            f"'{path}' is not an MR image: its Modality is '{modality or 'missing'}'. This "
            "model reads brain MRI (Modality MR) only."
        )
    if "PixelData" not in ds:
        raise DataError(f"'{path}' holds no image (no PixelData): a report or a structure set?")
    return ds


def _pixels(ds, path: Path) -> np.ndarray:
    """The stored values as float, ``(frames, H, W)``, through the modality LUT."""
    from pydicom.pixels import apply_modality_lut

    try:
        raw = ds.pixel_array
    except Exception as error:  # no decoder for the transfer syntax, or damaged pixel data
        meta = getattr(ds, "file_meta", None)
        syntax = getattr(meta, "TransferSyntaxUID", None) if meta is not None else None
        name = getattr(syntax, "name", str(syntax)) if syntax is not None else "unknown"
        compressed = syntax is not None and getattr(syntax, "is_compressed", False)
        hint = (" Install a decoder for it (pip install pylibjpeg pylibjpeg-libjpeg "
                "pylibjpeg-openjpeg) or convert the study to an uncompressed transfer syntax."
                if compressed else "")  # fmt: skip
        raise DataError(
            f"'{path}': the pixel data could not be decoded (transfer syntax {name}: "
            f"{str(error).splitlines()[0][:200]}).{hint}"
        ) from None
    values = apply_modality_lut(raw, ds).astype(np.float64)
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    if values.ndim == 2:
        values = values[None]
    elif values.ndim == 3 and frames == 1:  # (H, W, samples): colour
        raise DataError(f"'{path}' is a colour image ({ds.PhotometricInterpretation}), not an "
                        "MR slice.")  # fmt: skip
    if str(getattr(ds, "PhotometricInterpretation", "")) == "MONOCHROME1":
        values = values.max() + values.min() - values  # low values are bright: invert
    return values


def _window(values: np.ndarray, ds) -> np.ndarray:
    """``uint8`` from the file's window (the first, when several) or the percentile rule."""
    center, width = getattr(ds, "WindowCenter", None), getattr(ds, "WindowWidth", None)
    if center is not None and width is not None:
        center = float(center[0] if isinstance(center, Sequence) else center)
        width = float(width[0] if isinstance(width, Sequence) else width)
        if width > 1:
            low, high = center - width / 2, center + width / 2
            scaled = (np.clip(values, low, high) - low) / (high - low)
            return (scaled * 255).round().astype(np.uint8)
    return window_to_uint8(values)


def window_slice(ds, path: Path) -> np.ndarray:
    """The first frame of a dataset as a windowed ``uint8`` ``(H, W)`` slice."""
    return _window(_pixels(ds, path)[0], ds)


def _position(ds) -> float | None:
    """The slice's position along its normal (``None`` without the geometry tags)."""
    orientation = getattr(ds, "ImageOrientationPatient", None)
    position = getattr(ds, "ImagePositionPatient", None)
    if orientation is None or position is None or len(orientation) != 6:
        return None
    row, col = np.asarray(orientation[:3], float), np.asarray(orientation[3:], float)
    return float(np.dot(np.cross(row, col), np.asarray(position, float)))


def dicom_files(inputs: Iterable[str | Path]) -> list[Path]:
    """The files of ``inputs`` (files, or folders searched recursively; hidden files and
    DICOMDIR indexes left out)."""
    found: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            found += sorted(p for p in item.rglob("*") if p.is_file()
                            and not p.name.startswith(".") and p.name != "DICOMDIR")  # fmt: skip
        elif item.is_file():
            found.append(item)
        else:
            raise FileNotFoundError(f"'{item}' does not exist.")
    return found


def read_series(
    inputs: Iterable[str | Path], overrides: Mapping[str, str] | None = None
) -> tuple[list[Series], list[tuple[Path, str]]]:
    """The MR series of ``inputs`` (files or folders of one or more studies), each ordered, and
    the files skipped with the reason (not DICOM, not MR, undecodable)."""
    groups: dict[str, list[tuple[object, int, Path, object]]] = defaultdict(list)
    skipped: list[tuple[Path, str]] = []
    seen: dict[str, Path] = {}
    for path in dicom_files(inputs):
        try:
            ds = read_dataset(path)
        except DataError as error:
            skipped.append((path, str(error)))
            continue
        instance = str(getattr(ds, "SOPInstanceUID", "") or "")
        if instance and instance in seen:  # a copy of a file: it would count twice
            skipped.append((path, f"'{path}' is a copy of '{seen[instance].name}' (the same "
                                  "SOPInstanceUID): counted once"))  # fmt: skip
            continue
        seen[instance] = path
        uid = str(getattr(ds, "SeriesInstanceUID", "") or f"no-series:{path.parent}")
        number = int(getattr(ds, "InstanceNumber", 0) or 0)
        groups[uid].append((_position(ds), number, path, ds))
    series: list[Series] = []
    for uid, members in groups.items():
        located = all(m[0] is not None for m in members)
        members.sort(key=lambda m: (m[0], m[1]) if located else (m[1], str(m[2])))
        first = members[0][3]
        found = Series(uid, str(getattr(first, "StudyInstanceUID", "") or ""),
                       str(getattr(first, "SeriesDescription", "") or ""),
                       infer_sequence(first, overrides))  # fmt: skip
        for _, _, path, ds in members:
            try:
                frames = _pixels(ds, path)
            except DataError as error:
                skipped.append((path, str(error)))
                continue
            for frame in frames:
                found.slices.append(_window(frame, ds))
                found.files.append(path)
        _same_size(found, skipped)
        if found.slices:
            series.append(found)
    return series, skipped


def _same_size(series: Series, skipped: list[tuple[Path, str]]) -> None:
    """Keep the slices of the series' most common size; the others are skipped, named."""
    sizes = [s.shape for s in series.slices]
    if len(set(sizes)) <= 1:
        return
    common = max(set(sizes), key=sizes.count)
    kept = [(s, f) for s, f in zip(series.slices, series.files, strict=True) if s.shape == common]
    for s, f in zip(series.slices, series.files, strict=True):
        if s.shape != common:
            skipped.append((f, f"'{f}' is {s.shape[1]}x{s.shape[0]} px, unlike the "
                               f"{common[1]}x{common[0]} px of the rest of its series: "
                               "left out of the series"))  # fmt: skip
    series.slices, series.files = [s for s, _ in kept], [f for _, f in kept]
