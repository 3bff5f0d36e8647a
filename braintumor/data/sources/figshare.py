"""The ``figshare`` layout, Cheng et al.'s set (figshare 1512427): one MATLAB v7.3 file per
slice, ``N.mat`` anywhere under root; the label and the patient id are read from each file.

Each ``N.mat`` is an HDF5 file holding a ``cjdata`` struct: ``label`` (1 meningioma, 2 glioma,
3 pituitary), ``PID`` (the patient id, a char array), ``image`` (int16, 512x512 for most
slices, 256x256 for a few), ``tumorBorder`` (``[x1, y1, x2, y2, ...]``) and ``tumorMask``.
MATLAB stores arrays column-major, so h5py reads them transposed; they are transposed back.

Windowing (one rule, for every use of these files): the intensities from the slice's minimum
to its :data:`WINDOW_PERCENTILE` th percentile (the lower nearest rank) map linearly to 0..255,
brighter ones clip to 255 (a few very bright pixels, e.g. vessels or fat, would otherwise
darken the whole slice).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from braintumor.data.scan import Scan
from braintumor.data.sources import FoundScans
from braintumor.errors import DataError

LABELS = {1: "meningioma", 2: "glioma", 3: "pituitary"}
"""``cjdata.label`` -> the source label the loader gives the slice (and the label map maps)."""
WINDOW_PERCENTILE = 99.5
FIELDS = ("label", "PID", "image", "tumorBorder", "tumorMask")
IGNORED_FILES = ("cvind.mat",)
"""``.mat`` files of the download that are not slices (the authors' 5-fold indices)."""


@dataclass(frozen=True)
class FigshareRecord:
    """One slice: its label code (1-3), patient id, windowed image, tumour mask and border."""

    label: int
    pid: str
    image: np.ndarray  # uint8 (H, W), windowed, upright
    tumor_mask: np.ndarray  # bool (H, W), same orientation as image
    tumor_border: np.ndarray  # float (K, 2): the border points as stored, (x, y) pairs

    @property
    def source_label(self) -> str:
        return LABELS[self.label]


def window_to_uint8(values: np.ndarray) -> np.ndarray:
    """The documented windowing: min .. 99.5th percentile (lower nearest rank) -> 0..255,
    clipped. Integer slices go through a lookup table (a few ms for 512x512)."""
    values = np.asarray(values)
    flat = values.ravel()
    low, top = flat.min(), flat.max()
    k = int(WINDOW_PERCENTILE / 100 * (flat.size - 1))
    high = np.partition(flat, k)[k]
    if high <= low:
        high = top
    if high <= low:
        return np.zeros(values.shape, dtype=np.uint8)
    scale = 255.0 / (float(high) - float(low))
    if np.issubdtype(values.dtype, np.integer) and int(top) - int(low) < 2**20:
        levels = np.arange(int(top) - int(low) + 1, dtype=np.float64)
        table = np.clip(np.rint(levels * scale), 0, 255).astype(np.uint8)
        return table[values.astype(np.int64) - int(low)]
    scaled = (values.astype(np.float64) - float(low)) * scale
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def _open(path: Path):  # -> h5py.File
    import h5py  # imported late: only .mat files need it

    if not path.is_file():
        raise DataError(f"'{path}': no such file.")
    if not h5py.is_hdf5(path):
        raise DataError(
            f"'{path}' is not a MATLAB v7.3 (HDF5) file: the figshare slices are v7.3; an "
            "older .mat (or a damaged download) cannot be read. Re-download the set."
        )
    try:
        return h5py.File(path, "r")
    except OSError as error:
        raise DataError(f"'{path}' cannot be opened as HDF5: {error}") from None


def _field(data, name: str, path: Path) -> np.ndarray:
    if name not in data:
        raise DataError(
            f"'{path}' lacks the field cjdata.{name} (a figshare slice has {', '.join(FIELDS)})."
        )
    return np.asarray(data[name][()])


def _cjdata(file, path: Path):
    if "cjdata" not in file:
        raise DataError(f"'{path}' holds no 'cjdata' struct: it is not a figshare slice.")
    return file["cjdata"]


def _label_and_pid(data, path: Path) -> tuple[int, str]:
    raw = _field(data, "label", path).ravel()
    code = int(raw[0]) if raw.size == 1 and float(raw[0]).is_integer() else None
    if code not in LABELS:
        raise DataError(
            f"'{path}' has cjdata.label {raw.tolist()}; expected 1 (meningioma), 2 (glioma) or "
            "3 (pituitary)."
        )
    chars = _field(data, "PID", path).ravel()
    pid = "".join(chr(int(c)) for c in chars).strip("\x00 ")
    if not pid:
        raise DataError(f"'{path}' has an empty cjdata.PID (the patient id).")
    return code, pid


def read_figshare_labels(path: str | Path) -> tuple[int, str]:
    """``(label code, patient id)`` of one slice, without reading its pixels (every field
    must be present)."""
    path = Path(path)
    with _open(path) as file:
        data = _cjdata(file, path)
        missing = [name for name in FIELDS if name not in data]
        if missing:
            raise DataError(
                f"'{path}' lacks the field(s) {', '.join(f'cjdata.{m}' for m in missing)} "
                f"(a figshare slice has {', '.join(FIELDS)})."
            )
        return _label_and_pid(data, path)


def read_figshare_image(path: str | Path) -> np.ndarray:
    """The windowed ``uint8`` image of one slice (what training and hashing see)."""
    path = Path(path)
    with _open(path) as file:
        return window_to_uint8(_image(_cjdata(file, path), path))


def _image(data, path: Path) -> np.ndarray:
    image = _field(data, "image", path)
    if image.ndim != 2 or min(image.shape) < 8:
        raise DataError(f"'{path}' has a cjdata.image of shape {image.shape}; expected 2-D.")
    return image.T


def read_figshare_mat(path: str | Path) -> FigshareRecord:
    """Everything of one slice; a bad file raises :class:`DataError` naming it."""
    path = Path(path)
    with _open(path) as file:
        data = _cjdata(file, path)
        label, pid = _label_and_pid(data, path)
        image = _image(data, path)
        mask = _field(data, "tumorMask", path).T.astype(bool)
        border = _field(data, "tumorBorder", path).astype(np.float64).ravel()
    if mask.shape != image.shape:
        raise DataError(
            f"'{path}': cjdata.tumorMask is {mask.shape} but cjdata.image is {image.shape}."
        )
    return FigshareRecord(
        label, pid, window_to_uint8(image), mask, border[: border.size // 2 * 2].reshape(-1, 2)
    )


def is_figshare_slice(name: str) -> bool:
    """True for the ``.mat`` files that are slices (not ``cvind.mat``, not hidden files)."""
    return name.lower().endswith(".mat") and not name.startswith(".") and name not in IGNORED_FILES


read_image = read_figshare_image  # the decoder of the .mat endings (braintumor.data.image)


def read_mask(path: str | Path) -> np.ndarray:
    """The tumour mask of one slice (``bool``, upright like its image)."""
    return read_figshare_mat(path).tumor_mask


def scan(root: Path, source: str = "", exclude: Sequence[str] = ()) -> FoundScans:
    """Every ``.mat`` slice under ``root`` (sorted by path) with its label and patient id; a
    file that cannot be read as a slice is skipped with the reason."""
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
    found = FoundScans([], patients=[])
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


def detect(root: Path) -> bool:
    """True when a ``.mat`` slice lies anywhere under ``root``."""
    return any(any(is_figshare_slice(n) for n in names) for _, _, names in os.walk(root))


def unzip_nested(base: Path) -> None:
    """Extract the zip archives inside ``base`` in place (figshare's article zip holds four
    zips of slices), each into a folder of its name."""
    for archive in sorted(base.rglob("*.zip")):
        with zipfile.ZipFile(archive) as inner:
            inner.extractall(archive.with_suffix(""))
        archive.unlink()


def install(base: Path, out: Path, writable: bool = False) -> None:
    """Every ``N.mat`` slice under ``base`` into ``out`` (flat, as :func:`scan` expects); the
    nested zips are extracted in ``base``, or in a copy of it unless ``writable``."""
    if not writable:  # a folder of the user's: extract its nested zips in a copy
        with tempfile.TemporaryDirectory() as tmp:
            install(Path(shutil.copytree(base, Path(tmp) / "copy")), out, writable=True)
        return
    unzip_nested(base)
    slices = [p for p in base.rglob("*.mat") if is_figshare_slice(p.name)]
    if not slices:
        raise DataError(f"no .mat slices found under '{base}' (the figshare set's N.mat files).")
    out.mkdir(parents=True, exist_ok=True)
    for path in slices:
        shutil.copy2(path, out / path.name)


def describe(out: Path) -> str:
    """What an installed copy holds, in one line."""
    return f"{sum(1 for _ in out.glob('*.mat'))} .mat slices at {out}"
