"""NIfTI volumes (``.nii``, ``.nii.gz``) as 8-bit axial slices.

The volume is reoriented to the closest canonical orientation (RAS+: x to the patient's
right, y anterior, z superior; nibabel's ``as_closest_canonical``), so that its third axis runs
from the feet to the head whatever the scanner wrote. Each axial slice is shown as radiology
shows it: anterior at the top, the patient's right on the left. Intensities are windowed once
per volume by the figshare reader's percentile rule (minimum .. 99.5th percentile -> 0..255),
so slices of one volume share a scale. 4-D files (time series) take their first volume.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from braintumor.data.sources.figshare import window_to_uint8
from braintumor.errors import DataError

ENDINGS = (".nii", ".nii.gz")


def is_nifti(path: str | Path) -> bool:
    return str(path).lower().endswith(ENDINGS)


def read_volume(path: str | Path) -> np.ndarray:
    """The axial slices of the volume at ``path``: ``uint8`` ``(Z, H, W)``, foot to head."""
    import nibabel as nib

    path = Path(path)
    unreadable = (nib.filebasedimages.ImageFileError, OSError, EOFError, ValueError)
    try:
        loaded = nib.load(str(path))
    except unreadable as error:
        raise DataError(f"'{path}' is not a readable NIfTI volume ({error}).") from None
    if len(loaded.shape) < 3:
        raise DataError(f"'{path}' is not a 3-D volume (shape {loaded.shape}).")
    if abs(np.linalg.det(np.asarray(loaded.affine)[:3, :3])) < 1e-12:
        raise DataError(f"'{path}' has a singular affine (no orientation can be read from it): "
                        "fix the file's qform/sform.")  # fmt: skip
    try:
        image = nib.as_closest_canonical(loaded)
        data = np.asarray(image.dataobj, dtype=np.float64)
    except unreadable as error:
        raise DataError(f"'{path}' is not a readable NIfTI volume ({error}).") from None
    if data.ndim == 4:
        data = data[..., 0]
    if data.ndim != 3 or min(data.shape) < 1:
        raise DataError(f"'{path}' is not a 3-D volume (shape {data.shape}).")
    if not np.isfinite(data).all():
        data = np.nan_to_num(data, nan=0.0, posinf=0.0, neginf=0.0)
    windowed = window_to_uint8(data)  # one scale for the whole volume
    # [x, y, z] -> per z: rows anterior..posterior, columns patient's right..left
    return np.ascontiguousarray(windowed[::-1, ::-1, :].transpose(2, 1, 0))
