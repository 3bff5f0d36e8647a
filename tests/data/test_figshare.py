import h5py
import numpy as np
import pytest

from braintumor.data.image import load_image
from braintumor.data.sources.figshare import (
    read_figshare_image,
    read_figshare_labels,
    read_figshare_mat,
    window_to_uint8,
)
from braintumor.errors import DataError
from tests.data.public_sets import figshare_slice, write_figshare_mat


def test_slice_reads_upright_with_label_pid_and_mask(tmp_path):
    image = np.zeros((40, 64), dtype=np.int16)  # not square: a missed transpose would show
    image[:10, :] = 800  # bright top rows
    mask = np.zeros((40, 64), dtype=bool)
    mask[30:35, 50:60] = True  # bottom right
    path = write_figshare_mat(tmp_path / "7.mat", 2, "MR040237", image, mask)
    record = read_figshare_mat(path)
    assert (record.label, record.pid, record.source_label) == (2, "MR040237", "glioma")
    assert record.image.shape == (40, 64) and record.image.dtype == np.uint8
    assert record.image[:10].min() == 255 and record.image[10:].max() == 0
    assert record.tumor_mask.dtype == bool and (record.tumor_mask == mask).all()
    assert record.tumor_border.shape[1] == 2
    assert read_figshare_labels(path) == (2, "MR040237")


def test_windowing_is_min_to_99_5th_percentile():
    values = np.arange(1000, dtype=np.int16).reshape(25, 40)
    out = window_to_uint8(values)
    high = np.percentile(values, 99.5)
    assert out.min() == 0 and out[values >= high].min() == 255
    assert abs(int(out.ravel()[500]) - round(500 / high * 255)) <= 1
    assert (window_to_uint8(np.full((4, 4), 7)) == 0).all()  # a flat slice stays black


def test_load_image_decodes_mat_like_any_scan(tmp_path):
    image, mask = figshare_slice(0, 3, 48)
    path = write_figshare_mat(tmp_path / "1.mat", 3, "42", image, mask)
    tensor = load_image(path, channels=3)
    assert tuple(tensor.shape) == (3, 48, 48)
    assert (tensor[0].numpy() == read_figshare_image(path)).all()


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("v5", "not a MATLAB v7.3"),
        ("no_mask", r"lacks the field(\(s\))? cjdata.tumorMask"),
        ("label_4", r"label \[4.0\]; expected 1"),
        ("no_cjdata", "no 'cjdata' struct"),
    ],
)
def test_bad_mat_files_raise_naming_the_file(tmp_path, setup, message):
    path = tmp_path / "9.mat"
    image, mask = figshare_slice(1, 1, 32)
    if setup == "v5":
        path.write_bytes(b"MATLAB 5.0 MAT-file" + b"\0" * 200)
    elif setup == "no_mask":
        fields = ("label", "PID", "image", "tumorBorder")
        write_figshare_mat(path, 1, "5", image, mask, fields=fields)
    elif setup == "label_4":
        write_figshare_mat(path, 4, "5", image, mask)
    else:
        with h5py.File(path, "w") as file:
            file.create_dataset("other", data=np.zeros(3))
    for read in (read_figshare_mat, read_figshare_labels):
        with pytest.raises(DataError, match=message) as error:
            read(path)
        assert str(path) in str(error.value)
