"""NIfTI volumes: reoriented to canonical whatever the affine, sliced axially foot to head in
radiological view, windowed once per volume; the slice selection skips what holds no brain."""

from __future__ import annotations

import numpy as np
import pytest

nib = pytest.importorskip("nibabel")

from braintumor.data.nifti import read_volume  # noqa: E402
from braintumor.data.slice_selection import EMPTY, OUTSIDE, select_slices  # noqa: E402
from braintumor.data.synthetic import render_scan  # noqa: E402
from braintumor.errors import DataError  # noqa: E402


def phantom_volume(slices: int = 10, size: int = 40, blank: int = 2) -> np.ndarray:
    """``(Z, H, W)`` display slices: ``blank`` empty ones at each end, phantoms between."""
    out = np.zeros((slices, size, size), dtype=np.float32)
    for k in range(blank, slices - blank):
        out[k] = render_scan("_NORMAL T1", np.random.default_rng([k]), size)
    return out


def save(volume_zhw: np.ndarray, path, affine: np.ndarray) -> None:
    """Store display slices as a RAS array, then re-express it in ``affine``'s orientation."""
    ras = volume_zhw.transpose(2, 1, 0)[::-1, ::-1, :]  # the inverse of read_volume's view
    canonical = nib.Nifti1Image(np.ascontiguousarray(ras), np.eye(4))
    target = nib.orientations.io_orientation(affine)
    start = nib.orientations.io_orientation(np.eye(4))
    transform = nib.orientations.ornt_transform(start, target)
    data = nib.orientations.apply_orientation(ras, transform)
    stored_affine = canonical.affine @ nib.orientations.inv_ornt_aff(transform, ras.shape)
    nib.save(nib.Nifti1Image(np.ascontiguousarray(data), stored_affine), str(path))


@pytest.mark.parametrize("orientation", ["RAS", "LPS", "PIL"])
def test_any_stored_orientation_reads_as_the_same_axial_slices(tmp_path, orientation):
    volume = phantom_volume()
    affine = nib.orientations.inv_ornt_aff(nib.orientations.axcodes2ornt(orientation),
                                           volume.shape)  # fmt: skip
    affine = np.diag([1, 1, 1, 1]) @ np.linalg.inv(affine) if orientation != "RAS" else np.eye(4)
    path = tmp_path / f"head_{orientation}.nii.gz"
    save(volume, path, affine)
    read = read_volume(path)
    assert read.shape == volume.shape and read.dtype == np.uint8
    for k in range(2, 8):
        a, b = read[k].astype(float).ravel(), volume[k].astype(float).ravel()
        assert np.corrcoef(a, b)[0, 1] > 0.99, (orientation, k)


def test_the_selection_skips_empty_slices_and_the_ends_of_the_brain():
    volume = phantom_volume(slices=14, blank=2)  # brain in slices 2..11
    chosen = select_slices(volume)
    reasons = dict(chosen.skipped)
    assert [k for k, r in reasons.items() if r == EMPTY] == [0, 1, 12, 13]
    assert reasons[2] == OUTSIDE and reasons[11] == OUTSIDE  # 10% of a 10-slice extent
    assert chosen.kept == list(range(3, 11))
    assert select_slices(np.zeros((3, 8, 8))).kept == []


def test_a_file_that_is_not_nifti_is_refused_naming_it(tmp_path):
    bad = tmp_path / "scan.nii.gz"
    bad.write_bytes(b"not gzip")
    with pytest.raises(DataError, match="not a readable NIfTI volume"):
        read_volume(bad)


def test_nibabels_anatomical_sample_reads_as_axial_slices():
    from pathlib import Path

    sample = Path(nib.__file__).parent / "tests" / "data" / "anatomical.nii"
    if not sample.is_file():
        pytest.skip("this nibabel wheel ships no test data")
    volume = read_volume(sample)
    image = nib.as_closest_canonical(nib.load(str(sample)))
    assert volume.shape == (image.shape[2], image.shape[1], image.shape[0])
    assert volume.dtype == np.uint8 and volume.max() == 255
    assert select_slices(volume).kept  # some slices hold brain
