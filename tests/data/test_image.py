import numpy as np
import pytest
import torch
from PIL import Image

from braintumor.data.image import load_image

MODES = ["L", "RGB", "RGBA", "LA", "P", "CMYK", "I;16", "I", "F", "1"]


def _write(tmp_path, mode: str):
    base = Image.fromarray(np.tile(np.arange(0, 250, 5, dtype=np.uint8), (30, 1)), mode="L")
    if mode == "I;16":
        image = Image.fromarray(np.asarray(base, dtype=np.uint16) * 200)
    elif mode in ("I", "F"):
        image = base.convert(mode)
    else:
        image = base.convert(mode)
    path = (
        tmp_path
        / f"img_{mode.replace(';', '_')}.{'tiff' if mode in ('I;16', 'I', 'F', 'CMYK') else 'png'}"
    )
    image.save(path)
    return path


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("channels", [1, 3])
def test_any_mode_loads_as_uint8(tmp_path, mode, channels):
    tensor = load_image(_write(tmp_path, mode), channels)
    assert tensor.dtype == torch.uint8
    assert tensor.shape == (channels, 30, 50)
    if mode != "1":  # a gradient survives conversion (bilevel images are thresholded)
        assert tensor[0, 0, -1] > tensor[0, 0, 0]


def test_sixteen_bit_is_rescaled_not_clipped(tmp_path):
    values = np.array([[0, 1000, 4095]], dtype=np.uint16)
    path = tmp_path / "x.tiff"
    Image.fromarray(values).save(path)
    assert load_image(path, 1)[0, 0].tolist() == [0, 62, 255]


def test_transparency_becomes_black_background(tmp_path):
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    rgba[..., :3] = 255  # white but fully transparent
    path = tmp_path / "t.png"
    Image.fromarray(rgba).save(path)
    assert load_image(path, 1).max() == 0
