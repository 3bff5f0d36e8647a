"""The numpy/PIL preprocessing of the ONNX path is the torch path's, within one grey level."""

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter

from braintumor.data.image import load_image
from braintumor.data.preprocessing import eval_transform
from braintumor.inference import preprocess
from braintumor.models import tta


def smooth(shape: tuple[int, ...], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    planes = [
        np.asarray(Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).filter(
            ImageFilter.GaussianBlur(2)))
        for _ in range(3)
    ]  # fmt: skip
    return np.stack(planes)


@pytest.mark.parametrize("shape, size", [((512, 480), 224), ((40, 56), 32), ((30, 30), 64),
                                         ((300, 20), 128), ((64, 64), 64)])  # fmt: skip
@pytest.mark.parametrize("channels", [1, 3])
def test_numpy_eval_input_equals_the_torch_eval_transform(shape, size, channels):
    pixels = smooth(shape, seed=size)[:channels]
    mean, std = [0.2, 0.3, 0.4][:channels], [0.25, 0.2, 0.3][:channels]
    expected = eval_transform(size, mean, std, channels)(torch.from_numpy(pixels)).numpy()
    got = preprocess.eval_input(pixels, size, mean, std)
    assert got.shape == expected.shape and got.dtype == np.float32
    assert np.abs(got - expected).max() <= 1.001 / 255 / min(std)  # one grey level at most
    assert np.mean(np.abs(got - expected) > 1e-6) < 0.15  # and rarely even that


@pytest.mark.parametrize("mode", ["none", "flip", "flip_shift"])
def test_numpy_test_time_views_equal_the_torch_ones(mode):
    batch = np.random.default_rng(0).normal(size=(3, 2, 25, 25)).astype(np.float32)
    expected = tta.views(torch.from_numpy(batch), mode).numpy()
    assert np.allclose(preprocess.views(batch, mode), expected, atol=1e-6, rtol=0)  # (x-f)+f


def test_decoding_matches_the_training_decoder_for_every_mode(tmp_path):
    grey = smooth((40, 30), 0)[0]
    for name, image in [("l.png", Image.fromarray(grey)),
                        ("rgba.png", Image.fromarray(grey).convert("RGBA")),
                        ("p.gif", Image.fromarray(grey).convert("P")),
                        ("i16.png", Image.fromarray(grey.astype(np.uint16) * 200))]:  # fmt: skip
        image.save(tmp_path / name)
        for channels in (1, 3):
            scan = preprocess.decode_scan(tmp_path / name, channels)
            assert np.array_equal(scan.pixels, load_image(tmp_path / name, channels).numpy())
            assert scan.colour == 0.0
    Image.fromarray(smooth((40, 30), 1).transpose(1, 2, 0)).save(tmp_path / "rgb.png")
    assert preprocess.decode_scan(tmp_path / "rgb.png", 1).colour > 0.05
